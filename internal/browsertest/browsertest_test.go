package browsertest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
)

const page = `<!DOCTYPE html><html><body>
<form>
<label for="e">Email</label><input id="e" type="email">
<label for="p">Password</label><input id="p" type="password">
<input aria-label="Search" type="search">
<button type="button" onclick="document.title='clicked'">Sign in</button>
<button type="button" aria-label="Close dialog">x</button>
<a href="#top">Say "hi" & 'bye'</a>
</form></body></html>`

func TestSelectors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	ctx := New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, sel, wantID string
	}{
		{"label for", Field("Email"), "e"},
		{"password label", Field("Password"), "p"},
		{"aria-label field", Field("Search"), ""},
		{"button text", Button("Sign in"), ""},
		{"button aria-label", Button("Close dialog"), ""},
		{"link with both quotes", Link(`Say "hi" & 'bye'`), ""},
	}
	for _, tt := range tests {
		nodes, err := chromedp.Run(ctx, chromedp.Nodes(tt.sel))
		if err != nil || len(nodes) != 1 {
			t.Errorf("%s: %d nodes, %v", tt.name, len(nodes), err)
			continue
		}
		if tt.wantID != "" && nodes[0].AttributeValue("id") != tt.wantID {
			t.Errorf("%s: found id %q", tt.name, nodes[0].AttributeValue("id"))
		}
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys("Email", "a@example.com", ByRole("textbox", "Email")),
		chromedp.Click("Sign in", ByRole("button", "Sign in")),
	); err != nil {
		t.Fatal(err)
	}
	v, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("e")))
	if err != nil || v != "a@example.com" {
		t.Fatalf("typed %q (%v)", v, err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil || title != "clicked" {
		t.Fatalf("title %q (%v)", title, err)
	}
}

func TestXPathString(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, `"plain"`},
		{`say "hi"`, `'say "hi"'`},
		{`it's`, `"it's"`},
		{`"a" 'b'`, `concat("", '"', "a", '"', " 'b'")`},
	}
	for _, tt := range tests {
		if got := xpathString(tt.in); got != tt.want {
			t.Errorf("xpathString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
