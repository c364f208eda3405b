// Package browsertest drives headless Chromium (chromedp) for the tests of
// what a person does in the console: sign in through the real form, find
// fields and buttons by their accessible names, see live updates.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"
)

// chromiumPaths are where Debian and other systems put Chromium.
var chromiumPaths = []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"}

// execPath finds Chromium: $CHROMIUM, then the usual paths, then $PATH.
func execPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, p := range chromiumPaths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// Timeout bounds one test's whole browser session, so that a page that
// never shows what a test waits for fails the test instead of hanging it.
// It is a safety net, not an assertion about speed.
const Timeout = 60 * time.Second

// New starts a headless Chromium for t, with a private profile, and
// returns a chromedp context for it; everything is torn down when t ends.
// A missing Chromium fails the test with how to install it: browser tests
// are part of the proof and are never skipped.
func New(t testing.TB) context.Context {
	t.Helper()
	path := execPath()
	if path == "" {
		t.Fatal("browsertest: Chromium not found: install it (apt-get install -y chromium) or set CHROMIUM to its path")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, Timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	// Start the browser now so a launch failure is reported as such.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: start Chromium (%s): %v", path, err)
	}
	return ctx
}

// xpathString quotes s for XPath 1.0, which has no escapes.
func xpathString(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	if !strings.Contains(s, `'`) {
		return `'` + s + `'`
	}
	parts := strings.Split(s, `"`)
	q := make([]string, len(parts))
	for i, p := range parts {
		q[i] = strconv.Quote(p)
	}
	return "concat(" + strings.Join(q, `, '"', `) + ")"
}

// Field is an XPath selector (use with chromedp.BySearch) for the form
// control whose <label> reads label: the accessible name a screen reader
// announces, so a test breaks when a person could no longer find it.
func Field(label string) string {
	l := xpathString(label)
	return `//*[(self::input or self::textarea or self::select) and (@id=//label[normalize-space()=` + l +
		`]/@for or @aria-label=` + l + `)]`
}

// Button is an XPath selector (chromedp.BySearch) for the button whose
// text or aria-label is name.
func Button(name string) string {
	n := xpathString(name)
	return `//button[normalize-space()=` + n + ` or @aria-label=` + n + `]`
}

// Link is an XPath selector (chromedp.BySearch) for the link whose text is
// name.
func Link(name string) string {
	return `//a[normalize-space()=` + xpathString(name) + `]`
}

// ByRole is a query option that finds elements by their computed ARIA role
// and accessible name, as a screen reader does (Accessibility.queryAXTree):
// ByRole("textbox", "Email"), ByRole("button", "Sign in"). The selector
// passed with it is only a label in error messages:
//
//	chromedp.SendKeys("Email", "a@example.com", browsertest.ByRole("textbox", "Email"))
func ByRole(role, name string) chromedp.QueryOption {
	return chromedp.ByFunc(func(ctx context.Context, t *chromedp.Target, n *chromedp.Node) ([]cdp.NodeID, error) {
		res, err := cdp.Call(ctx, t, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{
			NodeID: n.NodeID, Role: role, AccessibleName: name,
		})
		if err != nil {
			return nil, err
		}
		var backend []cdp.BackendNodeID
		for _, ax := range res.Nodes {
			if !ax.Ignored && ax.BackendDOMNodeID != 0 {
				backend = append(backend, ax.BackendDOMNodeID)
			}
		}
		if len(backend) == 0 {
			return nil, nil
		}
		pushed, err := cdp.Call(ctx, t, dom.PushNodesByBackendIDsToFrontend, dom.PushNodesByBackendIDsToFrontendParams{BackendNodeIDs: backend})
		if err != nil {
			return nil, err
		}
		return pushed.NodeIDs, nil
	})
}
