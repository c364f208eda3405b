package web_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/messenger"
	"github.com/baton-chat/baton/internal/pgtest"
	"github.com/baton-chat/baton/internal/postgres"
	"github.com/baton-chat/baton/internal/webhook"
	"github.com/baton-chat/baton/web"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const (
	hookSecret = "app-secret"
	hookToken  = "s3cret"
	hookPage   = "100200300"
)

// hookServer is Baton's HTTP handler over a real ingester and a fresh
// database with the Page connected.
func hookServer(t *testing.T, cfg webhook.Config) (*httptest.Server, *postgres.DB) {
	t.Helper()
	db := pgtest.DB(t)
	if err := db.EnsurePage(context.Background(), baton.Page{PageID: hookPage, BatonAppID: "2500000002", PrimaryAppID: "1500000001"}); err != nil {
		t.Fatal(err)
	}
	return hookServerOn(t, db, cfg), db
}

func hookServerOn(t *testing.T, db *postgres.DB, cfg webhook.Config) *httptest.Server {
	t.Helper()
	cfg.AppSecret, cfg.VerifyToken = hookSecret, hookToken
	in := webhook.New(db, cfg)
	in.Start()
	t.Cleanup(in.Close)
	srv := httptest.NewServer(web.New(web.Config{Ingest: in}))
	t.Cleanup(srv.Close)
	return srv
}

func hookBody(mid string) []byte {
	return []byte(`{"object":"page","entry":[{"id":"` + hookPage + `","time":1,"messaging":[{"sender":{"id":"700800900"},"recipient":{"id":"` + hookPage + `"},"timestamp":1458692752478,"message":{"mid":"` + mid + `","text":"h\u00e9llo https:\/\/x"}}]}]}`)
}

func sha1Sig(body []byte, key string) string {
	mac := hmac.New(sha1.New, []byte(key))
	mac.Write(body)
	return "sha1=" + hex.EncodeToString(mac.Sum(nil))
}

func post(t *testing.T, srv *httptest.Server, body []byte, headers map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

func rows(t *testing.T, db *postgres.DB, query string) int {
	t.Helper()
	var n int
	if err := db.Get(&n, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// The subscription challenge (PROTOCOL.md §3): echoed byte for byte on the
// right token, 403 otherwise, 400 without a challenge, nothing stored.
func TestWebhookVerify(t *testing.T) {
	srv, db := hookServer(t, webhook.Config{})
	tests := []struct {
		name   string
		query  url.Values
		status int
		body   string
	}{
		{"challenge echoed", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {hookToken}, "hub.challenge": {"1158201444"}}, 200, "1158201444"},
		{"any challenge bytes echoed", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {hookToken}, "hub.challenge": {"0042 a&b=c\u00e9"}}, 200, "0042 a&b=c\u00e9"},
		{"wrong token", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"nope"}, "hub.challenge": {"1"}}, 403, ""},
		{"token prefix", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {hookToken[:3]}, "hub.challenge": {"1"}}, 403, ""},
		{"missing token", url.Values{"hub.mode": {"subscribe"}, "hub.challenge": {"1"}}, 403, ""},
		{"wrong mode", url.Values{"hub.mode": {"unsubscribe"}, "hub.verify_token": {hookToken}, "hub.challenge": {"1"}}, 403, ""},
		{"missing challenge", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {hookToken}}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := srv.Client().Get(srv.URL + "/webhook?" + tt.query.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (%s)", res.StatusCode, tt.status, b)
			}
			if tt.status == 200 {
				if string(b) != tt.body {
					t.Errorf("body = %q, want %q", b, tt.body)
				}
				if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("content type %q", ct)
				}
			} else if strings.TrimSpace(string(b)) == tt.query.Get("hub.challenge") {
				t.Errorf("challenge echoed on a refusal")
			}
		})
	}
	if n := rows(t, db, `select count(*) from deliveries`); n != 0 {
		t.Errorf("verification stored %d deliveries", n)
	}
}

// POST /webhook (PROTOCOL.md §4.3, §4.4): 200 EVENT_RECEIVED only once
// the body is durable; 403 and nothing stored on any signature problem;
// 400 for malformed JSON with the raw body kept; 413 over the cap with
// nothing stored.
func TestWebhookReceive(t *testing.T) {
	good := hookBody("m_1")
	sig := messenger.SignSHA256(good, hookSecret)
	malformed := []byte(`{"object":"page","entry":[{"id":"` + hookPage + `"`)
	const maxBody = 512
	atCap := append(hookBody("m_cap"), bytes.Repeat([]byte(" "), maxBody-len(hookBody("m_cap")))...)
	overCap := append(append([]byte(nil), atCap...), ' ')
	tests := []struct {
		name       string
		cfg        webhook.Config
		body       []byte
		headers    map[string]string
		status     int
		reply      string
		stored     int    // deliveries
		status2    string // stored delivery status
		messages   int
		retryAfter bool
	}{
		{name: "signed delivery", body: good, headers: map[string]string{messenger.HeaderSignature256: sig},
			status: 200, reply: "EVENT_RECEIVED", stored: 1, status2: "ok", messages: 1},
		{name: "uppercase hex signature", body: good, headers: map[string]string{messenger.HeaderSignature256: "sha256=" + strings.ToUpper(strings.TrimPrefix(sig, "sha256="))},
			status: 200, reply: "EVENT_RECEIVED", stored: 1, status2: "ok", messages: 1},
		{name: "missing signature", body: good, headers: nil, status: 403},
		{name: "malformed signature", body: good, headers: map[string]string{messenger.HeaderSignature256: "sha256=not-hex"}, status: 403},
		{name: "signature without prefix", body: good, headers: map[string]string{messenger.HeaderSignature256: strings.TrimPrefix(sig, "sha256=")}, status: 403},
		{name: "wrong secret", body: good, headers: map[string]string{messenger.HeaderSignature256: messenger.SignSHA256(good, "other")}, status: 403},
		{name: "signature of other bytes", body: good, headers: map[string]string{messenger.HeaderSignature256: messenger.SignSHA256(hookBody("m_2"), hookSecret)}, status: 403},
		{name: "SHA1 only, not accepted by default", body: good, headers: map[string]string{messenger.HeaderSignatureSHA1: sha1Sig(good, hookSecret)}, status: 403},
		{name: "SHA1 only, accepted when configured", cfg: webhook.Config{AcceptSHA1: true}, body: good, headers: map[string]string{messenger.HeaderSignatureSHA1: sha1Sig(good, hookSecret)},
			status: 200, reply: "EVENT_RECEIVED", stored: 1, status2: "ok", messages: 1},
		{name: "wrong SHA1 when configured", cfg: webhook.Config{AcceptSHA1: true}, body: good, headers: map[string]string{messenger.HeaderSignatureSHA1: sha1Sig(good, "other")}, status: 403},
		{name: "wrong SHA-256 is not rescued by a good SHA1", cfg: webhook.Config{AcceptSHA1: true}, body: good,
			headers: map[string]string{messenger.HeaderSignature256: messenger.SignSHA256(good, "other"), messenger.HeaderSignatureSHA1: sha1Sig(good, hookSecret)}, status: 403},
		{name: "malformed JSON kept", body: malformed, headers: map[string]string{messenger.HeaderSignature256: messenger.SignSHA256(malformed, hookSecret)},
			status: 400, stored: 1, status2: "malformed"},
		{name: "over the size cap", cfg: webhook.Config{MaxBody: maxBody}, body: overCap, headers: map[string]string{messenger.HeaderSignature256: messenger.SignSHA256(overCap, hookSecret)},
			status: 413},
		{name: "exactly the size cap", cfg: webhook.Config{MaxBody: maxBody}, body: atCap, headers: map[string]string{messenger.HeaderSignature256: messenger.SignSHA256(atCap, hookSecret)},
			status: 200, reply: "EVENT_RECEIVED", stored: 1, status2: "ok", messages: 1},
		{name: "unknown page acknowledged", body: []byte(strings.ReplaceAll(string(good), hookPage, "999")),
			headers: map[string]string{messenger.HeaderSignature256: messenger.SignSHA256([]byte(strings.ReplaceAll(string(good), hookPage, "999")), hookSecret)},
			status:  200, reply: "EVENT_RECEIVED", stored: 1, status2: "ignored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, db := hookServer(t, tt.cfg)
			status, reply, _ := post(t, srv, tt.body, tt.headers)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (%q)", status, tt.status, reply)
			}
			if tt.reply != "" && reply != tt.reply {
				t.Errorf("reply = %q, want %q", reply, tt.reply)
			}
			if n := rows(t, db, `select count(*) from deliveries`); n != tt.stored {
				t.Fatalf("stored %d deliveries, want %d", n, tt.stored)
			}
			if tt.stored > 0 {
				var d struct {
					Status string `db:"status"`
					Body   []byte `db:"body"`
				}
				if err := db.Get(&d, `select status, body from deliveries`); err != nil {
					t.Fatal(err)
				}
				if d.Status != tt.status2 || !bytes.Equal(d.Body, tt.body) {
					t.Errorf("stored %s %q; want %s and the exact bytes", d.Status, d.Body, tt.status2)
				}
			}
			if n := rows(t, db, `select count(*) from messages`); n != tt.messages {
				t.Errorf("%d messages, want %d", n, tt.messages)
			}
		})
	}
}

// Meta resends what it thinks failed: the same POST twice is 200 twice and
// one message; a malformed body resent is 400 twice and one stored copy.
func TestWebhookRetries(t *testing.T) {
	srv, db := hookServer(t, webhook.Config{})
	good := hookBody("m_1")
	bad := []byte(`{"object":`)
	for i := 0; i < 3; i++ {
		if status, reply, _ := post(t, srv, good, map[string]string{messenger.HeaderSignature256: messenger.SignSHA256(good, hookSecret)}); status != 200 {
			t.Fatalf("retry %d: %d %s", i, status, reply)
		}
		if status, reply, _ := post(t, srv, bad, map[string]string{messenger.HeaderSignature256: messenger.SignSHA256(bad, hookSecret)}); status != 400 {
			t.Fatalf("malformed retry %d: %d %s", i, status, reply)
		}
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{`select count(*) from messages`, 1},
		{`select count(*) from events`, 1},
		{`select count(*) from deliveries where status = 'malformed'`, 1},
		{`select count(*) from deliveries where status = 'ok'`, 3},
		{`select count(*) from conversations`, 1},
	} {
		if n := rows(t, db, c.query); n != c.want {
			t.Errorf("%s = %d, want %d", c.query, n, c.want)
		}
	}
}

// When storage is gone Baton answers 503 (with Retry-After) so that Meta
// retries, rather than acknowledging what it did not store.
func TestWebhookStorageDown(t *testing.T) {
	tests := []struct {
		name string
		kill func(t *testing.T, db *postgres.DB)
	}{
		{"database dropped", func(t *testing.T, db *postgres.DB) {
			var name string
			if err := db.Get(&name, `select current_database()`); err != nil {
				t.Fatal(err)
			}
			other := pgtest.DB(t)
			if _, err := other.Exec(fmt.Sprintf(`drop database %q with (force)`, name)); err != nil {
				t.Fatal(err)
			}
		}},
		{"database handle closed", func(t *testing.T, db *postgres.DB) {
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, db := hookServer(t, webhook.Config{})
			good := hookBody("m_1")
			headers := map[string]string{messenger.HeaderSignature256: messenger.SignSHA256(good, hookSecret)}
			if status, _, _ := post(t, srv, good, headers); status != 200 {
				t.Fatalf("before: status %d", status)
			}
			tt.kill(t, db)
			next := hookBody("m_2")
			status, reply, h := post(t, srv, next, map[string]string{messenger.HeaderSignature256: messenger.SignSHA256(next, hookSecret)})
			if status != http.StatusServiceUnavailable {
				t.Fatalf("status = %d (%q), want 503", status, reply)
			}
			if h.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if strings.Contains(reply, "pq:") || strings.Contains(reply, "database \"") {
				t.Errorf("reply leaks internals: %q", reply)
			}
		})
	}
}
