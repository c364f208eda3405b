package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/messenger"
)

// badClient is a signed-in browser: a cookie jar and the session's CSRF
// token, taken from the sign-in form as a person's browser gets it.
type badClient struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var badCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]+)"|<meta name="csrf-token" content="([^"]+)"`)

func badSignIn(t *testing.T, base, email, password string) *badClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &badClient{t: t, base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if st, _ := b.get("/login"); st != http.StatusOK {
		t.Fatalf("GET /login: %d", st)
	}
	if st, body := b.post("/login", url.Values{"email": {email}, "password": {password}}); st != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", st, body)
	}
	b.get("/") // the new session's token
	return b
}

func (b *badClient) do(req *http.Request) (int, string) {
	b.t.Helper()
	req.Header.Set("Accept", "text/html")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := badCSRF.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1] + m[2]
	}
	return resp.StatusCode, string(body)
}

func (b *badClient) get(path string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

func (b *badClient) post(path string, form url.Values) (int, string) {
	form.Set("csrf_token", b.csrf)
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	return b.do(req)
}

// TestBadInput sweeps what a hostile or broken sender can throw at Baton:
// every case gets a clear 4xx or is stored and shown escaped, never a 5xx.
func TestBadInput(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	secret := "test-secret-" + t.Name() // what bootStack registered
	page := s.demoStack.emu.emu.PageID()
	hook := s.ConsoleURL + "/webhook"
	post := func(body []byte, contentType, sig string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, hook, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if sig != "" {
			req.Header.Set(messenger.HeaderSignature256, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	delivery := func(mid, messageTail string) []byte {
		ts := time.Now().UnixMilli()
		return []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":%q,"time":%d,"messaging":[{"sender":{"id":"880000001"},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q%s}}]}]}`,
			page, ts, page, ts, mid, messageTail))
	}
	stored := func(mid string) int {
		var n int
		if err := s.inst.db.QueryRowContext(ctx, `select count(*) from messages where mid = $1`, mid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	kept := func(body []byte) string {
		sum := sha256.Sum256(body)
		var st string
		s.inst.db.QueryRowContext(ctx, `select status from deliveries where sha256 = $1`, sum[:]).Scan(&st)
		return st
	}

	t.Run("huge body is 413", func(t *testing.T) {
		body := delivery("m.huge", `,"text":"`+strings.Repeat("a", int(s.inst.ingest.MaxBody()))+`"`)
		if st := post(body, "application/json", messenger.SignSHA256(body, secret)); st != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", st)
		}
		if st := post(body, "application/json", ""); st != http.StatusRequestEntityTooLarge {
			t.Fatalf("unsigned: status %d, want 413", st)
		}
	})

	t.Run("deep JSON is stored or 400", func(t *testing.T) {
		for _, depth := range []int{100, 9000, 100000} {
			mid := fmt.Sprintf("m.deep.%d", depth)
			body := delivery(mid, `,"text":"deep","extra":`+strings.Repeat("[", depth)+strings.Repeat("]", depth))
			st := post(body, "application/json", messenger.SignSHA256(body, secret))
			t.Logf("nesting depth %d: %d", depth, st)
			switch st {
			case http.StatusOK:
				if n := stored(mid); n != 1 {
					t.Errorf("depth %d: 200 but stored %d times", depth, n)
				}
			case http.StatusBadRequest:
				if k := kept(body); k != "malformed" {
					t.Errorf("depth %d: 400 but the delivery is %q, want kept as malformed", depth, k)
				}
			default:
				t.Errorf("depth %d: status %d, want 200 or 400", depth, st)
			}
		}
		nested := []byte(strings.Repeat(`{"a":`, 50000) + "1" + strings.Repeat("}", 50000))
		if st := post(nested, "application/json", messenger.SignSHA256(nested, secret)); st != http.StatusOK && st != http.StatusBadRequest {
			t.Errorf("nested object body: status %d, want 200 or 400", st)
		}
	})

	t.Run("invalid UTF-8 is 400 and kept", func(t *testing.T) {
		body := delivery("m.badutf8", `,"text":"caf`+"\xe9 \xff\xfe"+`"`)
		if st := post(body, "application/json", messenger.SignSHA256(body, secret)); st != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", st)
		}
		if k := kept(body); k != "malformed" {
			t.Fatalf("delivery %q, want kept as malformed", k)
		}
		if n := stored("m.badutf8"); n != 0 {
			t.Fatalf("stored %d messages from an invalid body", n)
		}
	})

	t.Run("wrong content type still needs the signature", func(t *testing.T) {
		body := delivery("m.textplain", `,"text":"sent as text/plain"`)
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
			if st := post(body, ct, "sha256="+strings.Repeat("0", 64)); st != http.StatusForbidden && st != http.StatusUnauthorized {
				t.Errorf("%q with a bad signature: %d, want refused", ct, st)
			}
		}
		if n := stored("m.textplain"); n != 0 {
			t.Fatalf("a badly signed delivery was stored")
		}
		if st := post(body, "text/plain", messenger.SignSHA256(body, secret)); st != http.StatusOK {
			t.Fatalf("text/plain with a good signature: %d, want 200", st)
		}
		if n := stored("m.textplain"); n != 1 {
			t.Fatalf("stored %d times, want 1", n)
		}
	})

	// The rest goes through the real flow: the emulator delivers, the
	// profile fetcher names the person, an agent reads the console.
	const evilName = `<img src=x onerror=alert(1)>`
	const evilText = `<script>alert("owned")</script> human`
	psid := s.newPerson(evilName, `"><svg onload=alert(2)>`)
	s.say(psid, evilText)
	waitFor(t, "the handover, with the person named", func() bool {
		c := s.conversationOf(psid)
		return c != nil && c.Status == baton.StatusOpen && c.FirstName == evilName
	})
	conv := s.conversationOf(psid)
	agent := badSignIn(t, s.ConsoleURL, "admin@example.test", "correct horse battery")

	t.Run("HTML in names and text is escaped", func(t *testing.T) {
		for _, path := range []string{"/", fmt.Sprintf("/conversations/%d", conv.ID)} {
			st, html := agent.get(path)
			if st != http.StatusOK {
				t.Fatalf("GET %s: %d", path, st)
			}
			if !strings.Contains(html, "&lt;img src=x onerror=alert(1)&gt;") {
				t.Errorf("GET %s: the name is not shown escaped", path)
			}
			for _, raw := range []string{"<img src=x", "<svg onload", "<script>alert"} {
				if strings.Contains(html, raw) {
					t.Errorf("GET %s: raw %q in the HTML", path, raw)
				}
			}
		}
		_, html := agent.get(fmt.Sprintf("/conversations/%d", conv.ID))
		if !strings.Contains(html, "&lt;script&gt;alert(") {
			t.Errorf("the message text is not shown escaped")
		}
	})

	t.Run("CR/LF in the Done note is JSON text", func(t *testing.T) {
		note := "fixed\r\nX-Injected: 1\r\n\r\n<b>body</b>"
		st, body := agent.post(fmt.Sprintf("/conversations/%d/done", conv.ID), url.Values{"outcome": {"resolved"}, "note": {note}})
		if st >= 400 {
			t.Fatalf("done: %d %s", st, body)
		}
		var done *baton.Handover
		waitFor(t, "the done handover", func() bool {
			hos, _ := s.inst.db.Handovers(ctx, conv.ID)
			for _, h := range hos {
				if h.Kind == "done" {
					done = h
				}
			}
			return done != nil
		})
		if strings.ContainsAny(done.Metadata, "\r\n") {
			t.Fatalf("raw CR/LF in the metadata: %q", done.Metadata)
		}
		var md struct {
			Note string `json:"note"`
		}
		if err := json.Unmarshal([]byte(done.Metadata), &md); err != nil {
			t.Fatalf("metadata %q: %v", done.Metadata, err)
		}
		if md.Note != note {
			t.Fatalf("note %q, want %q carried verbatim", md.Note, note)
		}
		waitFor(t, "the conversation in Done", func() bool {
			c := s.conversationOf(psid)
			return c.Status == baton.StatusClosed && c.CloseReason == baton.CloseDone
		})
	})
}
