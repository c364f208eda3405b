package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is the real clock the tests inject: it never moves by itself.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// hook is a webhook endpoint that answers verification and records POSTs.
type hook struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	posts  []post
	status []int         // status per POST, in order; 200 once exhausted
	gate   chan struct{} // when set, each POST waits until it is closed
	// arrived receives a value for each POST that waits at the gate.
	arrived chan struct{}
}

type post struct {
	body   []byte
	header http.Header
}

// event is one delivered event with the array it came in.
type event struct {
	channel string
	raw     map[string]any
}

func newHook(t *testing.T) *hook {
	h := &hook{t: t, arrived: make(chan struct{}, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			q := r.URL.Query()
			if q.Get("hub.mode") != "subscribe" || q.Get("hub.verify_token") != "vt" {
				http.Error(w, "forbidden", http.StatusForbidden)
				return
			}
			_, _ = io.WriteString(w, q.Get("hub.challenge"))
			return
		}
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		gate := h.gate
		h.mu.Unlock()
		if gate != nil {
			h.arrived <- struct{}{}
			<-gate
		}
		h.mu.Lock()
		n := len(h.posts)
		h.posts = append(h.posts, post{body: body, header: r.Header.Clone()})
		status := http.StatusOK
		if n < len(h.status) {
			status = h.status[n]
		}
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// events decodes every recorded POST into its events, in order.
func (h *hook) events() []event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []event
	for _, p := range h.posts {
		var env struct {
			Object string `json:"object"`
			Entry  []struct {
				ID        string           `json:"id"`
				Messaging []map[string]any `json:"messaging"`
				Standby   []map[string]any `json:"standby"`
			} `json:"entry"`
		}
		dec := json.NewDecoder(bytes.NewReader(p.body))
		dec.UseNumber()
		if err := dec.Decode(&env); err != nil {
			h.t.Fatalf("webhook body is not JSON: %v: %s", err, p.body)
		}
		for _, e := range env.Entry {
			for _, m := range e.Messaging {
				out = append(out, event{chanMessaging, m})
			}
			for _, m := range e.Standby {
				out = append(out, event{chanStandby, m})
			}
		}
	}
	return out
}

// reset forgets the recorded POSTs.
func (h *hook) reset() {
	h.mu.Lock()
	h.posts = nil
	h.mu.Unlock()
}

// kind names an event's kind as Baton would classify it.
func (ev event) kind() string {
	if m, ok := ev.raw["message"].(map[string]any); ok {
		if m["is_echo"] == true {
			return "echo"
		}
		return "message"
	}
	for _, k := range []string{"postback", "read", "delivery", "pass_thread_control", "take_thread_control", "request_thread_control", "app_roles"} {
		if _, ok := ev.raw[k]; ok {
			return k
		}
	}
	return "unknown"
}

// harness is an emulator with a fake clock, driven through its Handler.
type harness struct {
	t     *testing.T
	e     *Emulator
	clock *fakeClock
	h     http.Handler
}

func newHarness(t *testing.T, mode string) *harness {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	e, err := New(Config{Mode: mode, Now: clock.Now})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(e.Close)
	return &harness{t: t, e: e, clock: clock, h: e.Handler()}
}

// do performs a request against the handler and decodes a JSON answer.
func (hs *harness) do(method, target, contentType, body string, header ...string) (int, map[string]any) {
	hs.t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	var out map[string]any
	dec := json.NewDecoder(rec.Body)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil && err != io.EOF {
		hs.t.Fatalf("%s %s: answer is not JSON: %v", method, target, err)
	}
	return rec.Code, out
}

// ctl calls the control API with a JSON body and requires success.
func (hs *harness) ctl(method, path string, body any) map[string]any {
	hs.t.Helper()
	b, _ := json.Marshal(body)
	code, out := hs.do(method, path, "application/json", string(b))
	if code != http.StatusOK {
		hs.t.Fatalf("%s %s: status %d: %v", method, path, code, out)
	}
	return out
}

// app registers an app with a webhook on hk (or none) and returns its token.
func (hs *harness) app(id, role string, hk *hook, humanAgent bool) string {
	hs.t.Helper()
	body := map[string]any{"id": id, "name": "app" + id, "secret": "s" + id, "verify_token": "vt", "role": role, "human_agent": humanAgent}
	if hk != nil {
		body["webhook_url"] = hk.srv.URL + "/webhook"
	}
	return hs.ctl("POST", "/_emulator/apps", body)["page_access_token"].(string)
}

// user creates a person and returns the PSID.
func (hs *harness) user() string {
	hs.t.Helper()
	return hs.ctl("POST", "/_emulator/users", map[string]string{"first_name": "Ana", "last_name": "Lima"})["psid"].(string)
}

// say makes the person send a text.
func (hs *harness) say(psid, text string) string {
	hs.t.Helper()
	return hs.ctl("POST", "/_emulator/users/"+psid+"/messages", map[string]string{"text": text})["mid"].(string)
}

// graph calls a Graph endpoint with a JSON body and the token in the query.
func (hs *harness) graph(token, method, path string, body any) (int, map[string]any) {
	hs.t.Helper()
	b := ""
	if body != nil {
		raw, _ := json.Marshal(body)
		b = string(raw)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return hs.do(method, path+sep+"access_token="+url.QueryEscape(token), "application/json", b)
}

// flush waits until every delivery due now has been attempted.
func (hs *harness) flush() {
	hs.e.kickWorkers(context.Background())
}

// owner returns the thread owner as the state API shows it ("" = idle).
func (hs *harness) owner(psid string) string {
	hs.t.Helper()
	_, st := hs.do("GET", "/_emulator/state", "", "")
	for _, th := range st["threads"].([]any) {
		m := th.(map[string]any)
		if m["psid"] == psid {
			if s, ok := m["owner_app_id"].(string); ok {
				return s
			}
			return ""
		}
	}
	hs.t.Fatalf("no thread for %s", psid)
	return ""
}

// advance moves the emulator clock through the control API.
func (hs *harness) advance(d time.Duration) {
	hs.t.Helper()
	hs.ctl("POST", "/_emulator/clock", map[string]float64{"advance_seconds": d.Seconds()})
}

// graphCode extracts (code, subcode) from a Graph error answer.
func graphCode(out map[string]any) (int64, int64) {
	e, ok := out["error"].(map[string]any)
	if !ok {
		return 0, 0
	}
	code, _ := e["code"].(json.Number).Int64()
	var sub int64
	if s, ok := e["error_subcode"].(json.Number); ok {
		sub, _ = s.Int64()
	}
	return code, sub
}

// httptestGet fetches a non-JSON resource from the handler.
func httptestGet(hs *harness, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}
