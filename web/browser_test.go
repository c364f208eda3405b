package web_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/browsertest"
	"github.com/chromedp/chromedp"
)

// TestBrowserSignIn signs in through the real form in headless Chromium,
// finding the fields and the button by their accessible names, as a
// person with a screen reader would.
func TestBrowserSignIn(t *testing.T) {
	s := newSite(t, siteOpts{})
	ctx := browsertest.New(t)
	admin := s.users[baton.RoleAdmin]

	shot := func(name string) {
		if dir := os.Getenv("BATON_SCREENSHOTS"); dir != "" {
			if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
				os.WriteFile(filepath.Join(dir, name), png, 0o644)
			}
		}
	}

	// A wrong password first: the generic error is shown, in the page.
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.srv.URL+"/admin/users"),
		chromedp.WaitVisible("Email", browsertest.ByRole("textbox", "Email")),
		chromedp.SendKeys("Email", admin.Email, browsertest.ByRole("textbox", "Email")),
		chromedp.SendKeys("Password", "not the password", browsertest.ByRole("textbox", "Password")),
		chromedp.Click("Sign in", browsertest.ByRole("button", "Sign in")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-error"]`)),
	)
	if err != nil {
		t.Fatalf("wrong password: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="login-error"]`)))
	if err != nil || msg != "Wrong email or password." {
		t.Fatalf("error shown: %q %v", msg, err)
	}
	shot("login-error.png")

	// The right one lands on the page asked for at first (next=).
	err = chromedp.Do(ctx,
		chromedp.Clear("Email", browsertest.ByRole("textbox", "Email")),
		chromedp.SendKeys("Email", admin.Email, browsertest.ByRole("textbox", "Email")),
		chromedp.SendKeys("Password", testPassword, browsertest.ByRole("textbox", "Password")),
		chromedp.Click("Sign in", browsertest.ByRole("button", "Sign in")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="users"]`)),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(loc, "/admin/users") {
		t.Fatalf("landed on %q (%v), want /admin/users", loc, err)
	}
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="current-user"]`)))
	if err != nil || who != admin.Name {
		t.Fatalf("top bar shows %q (%v), want %q", who, err, admin.Name)
	}
	shot("admin-users.png")

	// Sign out through the top bar's button: back to the sign-in form.
	err = chromedp.Do(ctx,
		chromedp.Click("Sign out", browsertest.ByRole("button", "Sign out")),
		chromedp.WaitVisible("Sign in", browsertest.ByRole("button", "Sign in")),
	)
	if err != nil {
		t.Fatalf("sign out: %v", err)
	}
}
