package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/messenger"
	"github.com/baton-chat/baton/internal/pgtest"
	"github.com/baton-chat/baton/internal/webhook"
	"github.com/baton-chat/baton/web"
)

// idLogBuffer is a log sink shared by the server's goroutines.
type idLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *idLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *idLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines decodes the JSON log lines written so far.
func (s *idLogBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// requestIDServer is the web server over a real ingester and database,
// logging JSON at debug level (everything) into the returned buffer.
func requestIDServer(t *testing.T, ready func(context.Context) error) (*httptest.Server, *idLogBuffer) {
	t.Helper()
	db := pgtest.DB(t)
	if err := db.EnsurePage(context.Background(), baton.Page{PageID: hookPage, BatonAppID: "2500000002", PrimaryAppID: "1500000001"}); err != nil {
		t.Fatal(err)
	}
	buf := &idLogBuffer{}
	log := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	in := webhook.New(db, webhook.Config{AppSecret: hookSecret, VerifyToken: hookToken, Logger: log.With("component", "webhook")})
	in.Start()
	t.Cleanup(in.Close)
	srv := httptest.NewServer(web.New(web.Config{Ingest: in, Logger: log.With("component", "web"), Ready: ready}))
	t.Cleanup(srv.Close)
	return srv, buf
}

func TestRequestIDHeader(t *testing.T) {
	srv, _ := requestIDServer(t, nil)
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name     string
		incoming string
		keep     bool // the incoming id is echoed; otherwise a fresh one
	}{
		{"none given", "", false},
		{"uuid kept", "3f2b8c1e-7d4a-4b6e-9f00-123456789abc", true},
		{"proxy token kept", "req_01H:abc/def+g=", true},
		{"spaces replaced", "a b", false},
		{"quotes replaced", `x"y`, false},
		{"too long replaced", strings.Repeat("a", 129), false},
		{"longest kept", strings.Repeat("a", 128), true},
		{"non-ASCII replaced", "é", false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/healthz", nil)
			if tt.incoming != "" {
				req.Header.Set(web.RequestIDHeader, tt.incoming)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			got := res.Header.Get(web.RequestIDHeader)
			switch {
			case tt.keep && got != tt.incoming:
				t.Fatalf("id %q, want the caller's %q", got, tt.incoming)
			case !tt.keep && !hexID.MatchString(got):
				t.Fatalf("id %q is not a fresh one", got)
			case !tt.keep && seen[got]:
				t.Fatalf("id %q handed out twice", got)
			}
			seen[got] = true
		})
	}
}

// TestRequestIDInLogs: every line a request logs carries its id, and no
// line carries a message body, the verify token or a signature, at any
// level.
func TestRequestIDInLogs(t *testing.T) {
	srv, buf := requestIDServer(t, func(context.Context) error { return errors.New("database down") })
	const bodyMarker = "BODY-MARKER-do-not-log"
	do := func(method, path string, body []byte, hdr map[string]string) string {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode < 400 {
			t.Fatalf("%s %s: %d, want a failure (it must log)", method, path, res.StatusCode)
		}
		return res.Header.Get(web.RequestIDHeader)
	}
	badJSON := []byte(`{"object":"page","entry":[{"id":"` + hookPage + `","messaging":[{"message":{"text":"` + bodyMarker + `"` + "\xff")
	goodSig := messenger.SignSHA256(badJSON, hookSecret)
	ids := []string{
		do(http.MethodGet, "/readyz", nil, nil),
		do(http.MethodGet, "/webhook?hub.mode=subscribe&hub.verify_token=TOKEN-MARKER&hub.challenge=c", nil, nil),
		do(http.MethodPost, "/webhook", []byte(`{"text":"`+bodyMarker+`"}`), map[string]string{messenger.HeaderSignature256: "sha256=00"}),
		do(http.MethodPost, "/webhook", badJSON, map[string]string{messenger.HeaderSignature256: goodSig}),
		do(http.MethodPost, "/webhook", bytes.Repeat([]byte(bodyMarker), 1<<20), nil),
	}
	byID := map[string]int{}
	for _, l := range buf.lines(t) {
		id, _ := l["request_id"].(string)
		if id == "" {
			t.Errorf("log line without request_id: %v", l)
		}
		byID[id]++
	}
	for i, id := range ids {
		if byID[id] == 0 {
			t.Errorf("request %d (id %s) logged nothing under its id; log:\n%s", i, id, buf)
		}
	}
	for _, secret := range []string{bodyMarker, "TOKEN-MARKER", goodSig, hookSecret} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("log contains %q:\n%s", secret, buf)
		}
	}
}

// TestLogHandlerWithoutRequest: outside a request nothing is added, and
// derived loggers keep tagging.
func TestLogHandlerWithoutRequest(t *testing.T) {
	buf := &idLogBuffer{}
	log := slog.New(web.LogHandler(slog.NewJSONHandler(buf, nil)))
	log.Info("plain")
	log.With("component", "x").WithGroup("g").InfoContext(web.WithRequestID(context.Background(), "abc"), "tagged", "k", 1)
	lines := buf.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), buf)
	}
	if _, ok := lines[0]["request_id"]; ok {
		t.Fatalf("untagged line got an id: %v", lines[0])
	}
	if !strings.Contains(buf.String(), `"request_id":"abc"`) {
		t.Fatalf("derived logger lost the id: %s", buf)
	}
}
