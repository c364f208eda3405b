package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test credentials. The token holds characters that need query escaping;
// testProof was computed independently:
// printf 'EAAtoken+/=' | openssl dgst -sha256 -hmac 'shh-secret'
const (
	testToken  = "EAAtoken+/="
	testSecret = "shh-secret"
	testProof  = "9b68c39d5cf865b9ae88d6b77180fe9435d878c4b6d4c41cc5d0cd6bc3f45f89"
)

// seen is one request as the fake Graph received it.
type seen struct {
	Method, Path, ContentType, Body string
	Query                           url.Values
}

// fakeGraph stands in for the Graph API: it records every request and
// answers each with status and body.
type fakeGraph struct {
	mu   sync.Mutex
	reqs []seen
	srv  *httptest.Server
}

func newFakeGraph(t *testing.T, status int, body string) *fakeGraph {
	t.Helper()
	f := &fakeGraph{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{Method: r.Method, Path: r.URL.Path,
			ContentType: r.Header.Get("Content-Type"), Body: string(b), Query: r.URL.Query()})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGraph) client() *Client {
	return &Client{BaseURL: f.srv.URL + "/v25.0", PageToken: testToken, AppSecret: testSecret}
}

// only returns the single request received, failing otherwise.
func (f *fakeGraph) only(t *testing.T) seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) != 1 {
		t.Fatalf("fake graph got %d requests, want 1", len(f.reqs))
	}
	return f.reqs[0]
}

func (f *fakeGraph) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

const okSend = `{"recipient_id":"700800900","message_id":"m_Q7w"}`

func TestProofMatchesOpenSSL(t *testing.T) {
	c := &Client{PageToken: testToken, AppSecret: testSecret}
	if got := c.proof(); got != testProof {
		t.Fatalf("proof = %s, want %s", got, testProof)
	}
}

// TestRequestShapes checks method, path, credentials and the exact JSON body
// of every call against PROTOCOL.md §8.
func TestRequestShapes(t *testing.T) {
	tests := []struct {
		name     string
		reply    string
		call     func(*Client) error
		method   string
		path     string
		query    url.Values // besides the credentials
		wantBody string     // "" = no body
	}{
		{
			name:  "send text RESPONSE",
			reply: okSend,
			call: func(c *Client) error {
				_, err := c.Send(context.Background(), SendRequest{PSID: "700800900", MessagingType: TypeResponse,
					Message: Message{Text: "Hi, Ana from support here.", Metadata: "baton:7f3c9e2a"}})
				return err
			},
			method:   "POST",
			path:     "/v25.0/me/messages",
			wantBody: `{"recipient":{"id":"700800900"},"messaging_type":"RESPONSE","message":{"text":"Hi, Ana from support here.","metadata":"baton:7f3c9e2a"}}`,
		},
		{
			name:  "send HUMAN_AGENT attachment with quick reply",
			reply: okSend,
			call: func(c *Client) error {
				_, err := c.Send(context.Background(), SendRequest{PSID: "700800900", MessagingType: TypeMessageTag,
					Tag: TagHumanAgent, Message: Message{
						Attachment:   &Attachment{Type: "image", URL: "https://example.com/a.png"},
						Metadata:     "baton:1",
						QuickReplies: []QuickReply{{Title: "Yes", Payload: "YES"}},
					}})
				return err
			},
			method:   "POST",
			path:     "/v25.0/me/messages",
			wantBody: `{"recipient":{"id":"700800900"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"attachment":{"type":"image","payload":{"url":"https://example.com/a.png","is_reusable":false}},"quick_replies":[{"content_type":"text","title":"Yes","payload":"YES"}],"metadata":"baton:1"}}`,
		},
		{
			name:     "typing_on",
			reply:    `{"recipient_id":"700800900"}`,
			call:     func(c *Client) error { return c.SenderAction(context.Background(), "700800900", ActionTypingOn) },
			method:   "POST",
			path:     "/v25.0/me/messages",
			wantBody: `{"recipient":{"id":"700800900"},"sender_action":"typing_on"}`,
		},
		{
			name:  "pass with target and metadata",
			reply: `{"success":true}`,
			call: func(c *Client) error {
				return c.PassThreadControl(context.Background(), "700800900", "1500000001",
					`{"v":1,"outcome":"resolved"}`)
			},
			method:   "POST",
			path:     "/v25.0/me/pass_thread_control",
			wantBody: `{"recipient":{"id":"700800900"},"target_app_id":1500000001,"metadata":"{\"v\":1,\"outcome\":\"resolved\"}"}`,
		},
		{
			name:  "pass without target or metadata",
			reply: `{"success":true}`,
			call: func(c *Client) error {
				return c.PassThreadControl(context.Background(), "700800900", "", "")
			},
			method:   "POST",
			path:     "/v25.0/me/pass_thread_control",
			wantBody: `{"recipient":{"id":"700800900"}}`,
		},
		{
			name:  "pass to an id above 2^53",
			reply: `{"success":true}`,
			call: func(c *Client) error {
				return c.PassThreadControl(context.Background(), "700800900", "9007199254740993", "")
			},
			method:   "POST",
			path:     "/v25.0/me/pass_thread_control",
			wantBody: `{"recipient":{"id":"700800900"},"target_app_id":9007199254740993}`,
		},
		{
			name:  "request",
			reply: `{"success":true}`,
			call: func(c *Client) error {
				return c.RequestThreadControl(context.Background(), "700800900", `{"v":1,"reason":"VIP"}`)
			},
			method:   "POST",
			path:     "/v25.0/me/request_thread_control",
			wantBody: `{"recipient":{"id":"700800900"},"metadata":"{\"v\":1,\"reason\":\"VIP\"}"}`,
		},
		{
			name:  "extend rounds down to seconds",
			reply: `{"success":true}`,
			call: func(c *Client) error {
				return c.ExtendThreadControl(context.Background(), "700800900", time.Hour+1500*time.Millisecond)
			},
			method:   "POST",
			path:     "/v25.0/me/extend_thread_control",
			wantBody: `{"recipient":{"id":"700800900"},"duration":3601}`,
		},
		{
			name:  "thread owner",
			reply: `{"data":[]}`,
			call: func(c *Client) error {
				_, err := c.ThreadOwner(context.Background(), "700800900")
				return err
			},
			method: "GET",
			path:   "/v25.0/me/thread_owner",
			query:  url.Values{"recipient": {"700800900"}},
		},
		{
			name:  "user profile",
			reply: `{"first_name":"Peter"}`,
			call: func(c *Client) error {
				_, err := c.UserProfile(context.Background(), "700800900")
				return err
			},
			method: "GET",
			path:   "/v25.0/700800900",
			query:  url.Values{"fields": {"first_name,last_name,profile_pic"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, 200, tt.reply)
			if err := tt.call(f.client()); err != nil {
				t.Fatalf("call: %v", err)
			}
			r := f.only(t)
			if r.Method != tt.method || r.Path != tt.path {
				t.Errorf("request = %s %s, want %s %s", r.Method, r.Path, tt.method, tt.path)
			}
			want := url.Values{"access_token": {testToken}, "appsecret_proof": {testProof}}
			for k, v := range tt.query {
				want[k] = v
			}
			if got, w := r.Query.Encode(), want.Encode(); got != w {
				t.Errorf("query = %s, want %s", got, w)
			}
			if r.Body != tt.wantBody {
				t.Errorf("body =\n%s\nwant\n%s", r.Body, tt.wantBody)
			}
			if tt.wantBody != "" && r.ContentType != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", r.ContentType)
			}
		})
	}
}

func TestBaseURLTrailingSlash(t *testing.T) {
	f := newFakeGraph(t, 200, `{"success":true}`)
	c := f.client()
	c.BaseURL = f.srv.URL + "/"
	if err := c.RequestThreadControl(context.Background(), "700800900", ""); err != nil {
		t.Fatal(err)
	}
	if p := f.only(t).Path; p != "/me/request_thread_control" {
		t.Fatalf("path = %s, want /me/request_thread_control", p)
	}
}

func TestSendResult(t *testing.T) {
	tests := []struct {
		name, reply string
		want        SendResult
	}{
		{"strings", okSend, SendResult{RecipientID: "700800900", MessageID: "m_Q7w"}},
		{"recipient id as a number above 2^53", `{"recipient_id":9007199254740993,"message_id":"m_x"}`,
			SendResult{RecipientID: "9007199254740993", MessageID: "m_x"}},
		{"user_ref send without recipient_id", `{"message_id":"m_y"}`, SendResult{MessageID: "m_y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, 200, tt.reply)
			got, err := f.client().Send(context.Background(), SendRequest{PSID: "700800900",
				MessagingType: TypeResponse, Message: Message{Text: "hi"}})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("result = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestLocalRefusals checks requests the client refuses without calling Graph.
func TestLocalRefusals(t *testing.T) {
	long := strings.Repeat("é", 2001)
	ok := Message{Text: "hi"}
	tests := []struct {
		name string
		call func(*Client) error
	}{
		{"empty psid", func(c *Client) error {
			_, err := c.Send(context.Background(), SendRequest{MessagingType: TypeResponse, Message: ok})
			return err
		}},
		{"unknown messaging type", func(c *Client) error {
			_, err := c.Send(context.Background(), SendRequest{PSID: "1", MessagingType: "NOW", Message: ok})
			return err
		}},
		{"tag type without tag", func(c *Client) error {
			_, err := c.Send(context.Background(), SendRequest{PSID: "1", MessagingType: TypeMessageTag, Message: ok})
			return err
		}},
		{"empty message", func(c *Client) error {
			_, err := c.Send(context.Background(), SendRequest{PSID: "1", MessagingType: TypeResponse})
			return err
		}},
		{"text and attachment", func(c *Client) error {
			_, err := c.Send(context.Background(), SendRequest{PSID: "1", MessagingType: TypeResponse,
				Message: Message{Text: "x", Attachment: &Attachment{Type: "image", URL: "https://x/y"}}})
			return err
		}},
		{"text of 2001 characters", func(c *Client) error {
			_, err := c.Send(context.Background(), SendRequest{PSID: "1", MessagingType: TypeResponse,
				Message: Message{Text: long}})
			return err
		}},
		{"metadata of 1000 characters", func(c *Client) error {
			_, err := c.Send(context.Background(), SendRequest{PSID: "1", MessagingType: TypeResponse,
				Message: Message{Text: "x", Metadata: strings.Repeat("m", 1000)}})
			return err
		}},
		{"attachment type", func(c *Client) error {
			_, err := c.Send(context.Background(), SendRequest{PSID: "1", MessagingType: TypeResponse,
				Message: Message{Attachment: &Attachment{Type: "template", URL: "https://x/y"}}})
			return err
		}},
		{"attachment without url", func(c *Client) error {
			_, err := c.Send(context.Background(), SendRequest{PSID: "1", MessagingType: TypeResponse,
				Message: Message{Attachment: &Attachment{Type: "file"}}})
			return err
		}},
		{"unknown sender action", func(c *Client) error {
			return c.SenderAction(context.Background(), "1", "react")
		}},
		{"non-digit target app", func(c *Client) error {
			return c.PassThreadControl(context.Background(), "1", "1e9", "")
		}},
		{"pass metadata over 1000 characters", func(c *Client) error {
			return c.PassThreadControl(context.Background(), "1", "", strings.Repeat("m", 1001))
		}},
		{"extend below a second", func(c *Client) error {
			return c.ExtendThreadControl(context.Background(), "1", 999*time.Millisecond)
		}},
		{"extend beyond 7 days", func(c *Client) error {
			return c.ExtendThreadControl(context.Background(), "1", 7*24*time.Hour+time.Second)
		}},
		{"profile psid that is a path", func(c *Client) error {
			_, err := c.UserProfile(context.Background(), "../me")
			return err
		}},
		{"thread owner without psid", func(c *Client) error {
			_, err := c.ThreadOwner(context.Background(), "")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, 200, okSend)
			err := tt.call(f.client())
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if IsTransient(err) || IsTimeout(err) {
				t.Errorf("a local refusal must be permanent: transient=%v timeout=%v", IsTransient(err), IsTimeout(err))
			}
			if PlainReason(err) == "" {
				t.Error("no plain reason")
			}
			if n := f.count(); n != 0 {
				t.Errorf("graph called %d times", n)
			}
		})
	}
}

func TestExtendAcceptsSevenDays(t *testing.T) {
	f := newFakeGraph(t, 200, `{"success":true}`)
	if err := f.client().ExtendThreadControl(context.Background(), "1", 7*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if b := f.only(t).Body; b != `{"recipient":{"id":"1"},"duration":604800}` {
		t.Fatalf("body = %s", b)
	}
}

func TestNotConfigured(t *testing.T) {
	f := newFakeGraph(t, 200, `{"success":true}`)
	tests := []struct {
		name string
		c    *Client
	}{
		{"no token", &Client{BaseURL: f.srv.URL, AppSecret: testSecret}},
		{"no secret", &Client{BaseURL: f.srv.URL, PageToken: testToken}},
		{"no base url", &Client{PageToken: testToken, AppSecret: testSecret}},
		{"bad scheme", &Client{BaseURL: "ftp://graph", PageToken: testToken, AppSecret: testSecret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.RequestThreadControl(context.Background(), "1", "")
			if !errors.Is(err, ErrNotConfigured) || IsTransient(err) {
				t.Fatalf("err = %v, want permanent ErrNotConfigured", err)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("token leaked: %v", err)
			}
		})
	}
	if n := f.count(); n != 0 {
		t.Errorf("graph called %d times", n)
	}
}

func TestHandoverSuccessRequired(t *testing.T) {
	tests := []struct {
		name, reply   string
		wantTimeout   bool // indeterminate: may have taken effect
		wantPermanent bool
	}{
		{"success false", `{"success":false}`, false, true},
		{"no success field", `{"ok":1}`, true, false},
		{"not json", `OK`, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, 200, tt.reply)
			err := f.client().PassThreadControl(context.Background(), "1", "", "")
			if err == nil {
				t.Fatal("want an error")
			}
			if IsTimeout(err) != tt.wantTimeout {
				t.Errorf("IsTimeout = %v, want %v (%v)", IsTimeout(err), tt.wantTimeout, err)
			}
			if tt.wantPermanent && IsTransient(err) {
				t.Errorf("IsTransient = true for %v", err)
			}
		})
	}
}

func TestSendWithoutMessageIDIsIndeterminate(t *testing.T) {
	for _, reply := range []string{`{"recipient_id":"1"}`, `<html>ok</html>`, ``} {
		f := newFakeGraph(t, 200, reply)
		_, err := f.client().Send(context.Background(), SendRequest{PSID: "1", MessagingType: TypeResponse,
			Message: Message{Text: "hi"}})
		if !IsTimeout(err) || IsTransient(err) {
			t.Errorf("reply %q: err = %v, want indeterminate (IsTimeout) and not transient", reply, err)
		}
	}
}

// TestTimeoutIsIndeterminate covers both a context deadline and the HTTP
// client's own timeout against a Graph that never answers.
func TestTimeoutIsIndeterminate(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	req := SendRequest{PSID: "1", MessagingType: TypeResponse, Message: Message{Text: "hi"}}
	t.Run("context deadline", func(t *testing.T) {
		c := &Client{BaseURL: srv.URL, PageToken: testToken, AppSecret: testSecret}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := c.Send(ctx, req)
		checkTimeout(t, err)
	})
	t.Run("client timeout", func(t *testing.T) {
		c := &Client{BaseURL: srv.URL, PageToken: testToken, AppSecret: testSecret,
			HTTP: &http.Client{Timeout: 20 * time.Millisecond}}
		_, err := c.Send(context.Background(), req)
		checkTimeout(t, err)
	})
	t.Run("cancelled", func(t *testing.T) {
		c := &Client{BaseURL: srv.URL, PageToken: testToken, AppSecret: testSecret}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Send(ctx, req)
		checkTimeout(t, err)
	})
}

func checkTimeout(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error")
	}
	if !IsTimeout(err) {
		t.Errorf("IsTimeout = false for %v", err)
	}
	if IsTransient(err) {
		t.Errorf("IsTransient = true for %v; a timeout is indeterminate", err)
	}
	if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), url.QueryEscape(testToken)) ||
		strings.Contains(err.Error(), testProof) {
		t.Errorf("secret leaked: %v", err)
	}
}

func TestNetworkErrorIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	c := &Client{BaseURL: base, PageToken: testToken, AppSecret: testSecret}
	err := c.SenderAction(context.Background(), "1", ActionMarkSeen)
	if !IsTransient(err) || IsTimeout(err) {
		t.Fatalf("err = %v: transient=%v timeout=%v, want transient only", err, IsTransient(err), IsTimeout(err))
	}
	if strings.Contains(err.Error(), url.QueryEscape(testToken)) || strings.Contains(err.Error(), testProof) {
		t.Errorf("secret leaked: %v", err)
	}
	var ue *url.Error
	if errors.As(err, &ue) && (strings.Contains(ue.URL, url.QueryEscape(testToken)) || strings.Contains(ue.URL, testProof)) {
		t.Errorf("secret left in url.Error: %s", ue.URL)
	}
	if got := PlainReason(err); got != "Baton could not reach Messenger; it will try again." {
		t.Errorf("PlainReason = %q", got)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	var hits int
	var mu sync.Mutex
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	t.Cleanup(elsewhere.Close)
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirecting.Close)
	c := &Client{BaseURL: redirecting.URL, PageToken: testToken, AppSecret: testSecret}
	err := c.RequestThreadControl(context.Background(), "1", "")
	var ge *Error
	if !errors.As(err, &ge) || ge.HTTPStatus != http.StatusTemporaryRedirect || IsTransient(err) {
		t.Fatalf("err = %v, want a permanent HTTP 307 error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Fatalf("redirect followed: the token went to another host")
	}
}

func TestLogsAreRedacted(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, reply := range []string{
		`{"success":true}`,
		`{"error":{"message":"Invalid OAuth access token ` + testToken + `","type":"OAuthException","code":190}}`,
	} {
		f := newFakeGraph(t, 400, reply)
		c := f.client()
		c.Logger = logger
		err := c.RequestThreadControl(context.Background(), "1", "")
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Errorf("token in error: %v", err)
		}
	}
	out := buf.String()
	if !strings.Contains(out, "thread_control") {
		t.Fatalf("nothing logged: %q", out)
	}
	for _, secret := range []string{testToken, url.QueryEscape(testToken), testProof, testSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
}

// TestRequestBodiesAreValidJSON guards against hand-built JSON creeping in:
// metadata with quotes and non-ASCII must round-trip as a string field.
func TestRequestBodiesAreValidJSON(t *testing.T) {
	f := newFakeGraph(t, 200, `{"success":true}`)
	meta := `{"note":"Refund \"issued\" – ok","tags":["billing"]}`
	if err := f.client().PassThreadControl(context.Background(), "1", "", meta); err != nil {
		t.Fatal(err)
	}
	var got struct{ Metadata string }
	if err := json.Unmarshal([]byte(f.only(t).Body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Metadata != meta {
		t.Fatalf("metadata = %q, want %q", got.Metadata, meta)
	}
}
