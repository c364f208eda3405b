package emulator

import (
	"net/http"
	"strings"
	"testing"
)

func TestChatPage(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	page := httptestGet(hs, "/")
	if page.Code != http.StatusOK || !strings.HasPrefix(page.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", page.Code, page.Header().Get("Content-Type"))
	}
	html := page.Body.String()
	for _, want := range []string{`<label for="message" class="sr-only">Message</label>`, `>Send</button>`, `<label for="person">Person</label>`, `src="/_chat/chat.js"`} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(html, "<script>") {
		t.Error("inline script in the page")
	}
	js := httptestGet(hs, "/_chat/chat.js")
	if js.Code != http.StatusOK || !strings.Contains(js.Header().Get("Content-Type"), "javascript") {
		t.Fatalf("chat.js = %d", js.Code)
	}
	if strings.Contains(js.Body.String(), "innerHTML") {
		t.Error("chat.js uses innerHTML; data must go through textContent")
	}
	if css := httptestGet(hs, "/_chat/chat.css"); css.Code != http.StatusOK {
		t.Fatalf("chat.css = %d", css.Code)
	}
}
