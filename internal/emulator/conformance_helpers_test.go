package emulator_test

// Test harness for the conformance suite: an emulator behind a real HTTP
// server, webhook receivers that check every delivery independently, and thin
// clients for the control API and the Graph API. The suite is written from
// PROTOCOL.md and SPEC.md only; it never looks inside the emulator.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/emulator"
)

// Ids used throughout, taken from PROTOCOL.md §0 so that failures read like the spec.
const (
	pageID      = "100200300"
	botID       = "1500000001"
	batonID     = "2500000002"
	otherID     = "3500000003"
	pageInboxID = "263902037430900"
	graphV      = "/v25.0"
)

// baseTime is the emulator's injected wall clock. It never moves by itself, so
// every change of time in these tests is an explicit POST /_emulator/clock.
var baseTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// httpClient bounds every call, so an emulator that answers only after a
// webhook round trip fails a test instead of hanging it.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// waitFor polls cond every 10 ms for up to 5 s: deliveries are asynchronous,
// and fixed sleeps would make the suite both slow and flaky.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 5s waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// env is one emulator instance on a real HTTP server plus the receivers
// registered on it.
type env struct {
	t    *testing.T
	emu  *emulator.Emulator
	srv  *httptest.Server
	mode string

	mu        sync.Mutex
	receivers []*receiver
	tokens    map[string]string // app id -> page access token
	secrets   map[string]string // app id -> app secret
}

// newEnv starts an emulator in the given mode ("" = default). Cleanup closes
// the emulator before the receivers, so no retry hits a closed server.
func newEnv(t *testing.T, mode string) *env {
	t.Helper()
	emu, err := emulator.New(emulator.Config{
		Mode:     mode,
		PageName: "Conformance Page",
		Now:      func() time.Time { return baseTime },
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("emulator.New(mode %q): %v", mode, err)
	}
	e := &env{t: t, emu: emu, mode: mode, tokens: map[string]string{}, secrets: map[string]string{}}
	e.srv = httptest.NewServer(emu.Handler())
	t.Cleanup(func() {
		e.emu.Close()
		e.srv.Close()
		e.mu.Lock()
		rs := append([]*receiver(nil), e.receivers...)
		e.mu.Unlock()
		for _, r := range rs {
			r.release()
			r.srv.Close()
			r.check(t)
		}
	})
	return e
}

// ---------------------------------------------------------------------------
// Webhook receiver

// hookPost is one POST the emulator made to a receiver.
type hookPost struct {
	Body   []byte
	Header http.Header
	Status int // what the receiver answered
}

// hookEvent is one event out of a POST, flattened from entry[].messaging and
// entry[].standby.
type hookEvent struct {
	Post      int    // index into receiver.posts
	Channel   string // "messaging" or "standby"
	EntryID   any
	EntryTime any
	Raw       map[string]any // decoded with UseNumber so numbers stay numbers
}

// eventKinds is PROTOCOL.md §5's order of kind keys.
var eventKinds = []string{"message", "postback", "read", "delivery", "reaction", "referral", "optin",
	"pass_thread_control", "take_thread_control", "request_thread_control", "app_roles"}

// Kind names the event per PROTOCOL.md §5 ("echo" for a message with is_echo).
func (ev hookEvent) Kind() string {
	if m, ok := ev.Raw["message"].(map[string]any); ok {
		if m["is_echo"] == true {
			return "echo"
		}
		return "message"
	}
	for _, k := range eventKinds {
		if _, ok := ev.Raw[k]; ok {
			return k
		}
	}
	return "unknown"
}

// Obj returns the kind's object ("message", "pass_thread_control", …).
func (ev hookEvent) Obj(key string) map[string]any {
	m, _ := ev.Raw[key].(map[string]any)
	return m
}

// receiver is a test app's webhook endpoint. It answers the GET challenge,
// records every request, and checks both signatures itself.
type receiver struct {
	srv         *httptest.Server
	appID       string
	secret      string
	verifyToken string

	mu          sync.Mutex
	seq         []string // "GET" / "POST" in arrival order
	gets        []url.Values
	posts       []hookPost
	failing     bool // answer 500 to POSTs
	challengeOK bool // echo the challenge correctly
	inFlight    int  // concurrent POSTs right now
	maxInFlight int  // most concurrent POSTs seen
	problems    []string
	hold        chan struct{} // when non-nil, POSTs block until it is closed
}

func newReceiver(appID, secret, verifyToken string) *receiver {
	r := &receiver{appID: appID, secret: secret, verifyToken: verifyToken, challengeOK: true}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodGet:
		q := req.URL.Query()
		r.mu.Lock()
		r.seq = append(r.seq, "GET")
		r.gets = append(r.gets, q)
		ok := r.challengeOK
		r.mu.Unlock()
		if q.Get("hub.mode") != "subscribe" || q.Get("hub.verify_token") != r.verifyToken {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		if ok {
			io.WriteString(w, q.Get("hub.challenge"))
		} else {
			io.WriteString(w, q.Get("hub.challenge")+"0")
		}
	case http.MethodPost:
		body, err := io.ReadAll(req.Body)
		r.mu.Lock()
		r.inFlight++
		if r.inFlight > r.maxInFlight {
			r.maxInFlight = r.inFlight
		}
		hold := r.hold
		r.mu.Unlock()
		if hold != nil {
			<-hold
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.inFlight--
		if err != nil {
			r.problems = append(r.problems, fmt.Sprintf("reading body: %v", err))
		}
		r.checkPost(body, req.Header)
		status := http.StatusOK
		if r.failing {
			status = http.StatusInternalServerError
		}
		r.seq = append(r.seq, "POST")
		r.posts = append(r.posts, hookPost{Body: body, Header: req.Header.Clone(), Status: status})
		w.WriteHeader(status)
		if status == http.StatusOK {
			io.WriteString(w, "EVENT_RECEIVED")
		}
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

// checkPost records any violation of PROTOCOL.md §4.1/§4.3 in a delivery:
// both signatures over the raw bytes, JSON content type, ASCII-only body,
// `object:"page"`, one event per entry. Called with r.mu held.
func (r *receiver) checkPost(body []byte, h http.Header) {
	bad := func(format string, args ...any) {
		r.problems = append(r.problems, fmt.Sprintf(format, args...)+fmt.Sprintf(" (body %s)", body))
	}
	want256 := "sha256=" + hmacHex(sha256.New, r.secret, body)
	if got := h.Get("X-Hub-Signature-256"); got != want256 {
		bad("X-Hub-Signature-256 = %q, want %q (§4.3)", got, want256)
	}
	want1 := "sha1=" + hmacHex(sha1.New, r.secret, body)
	if got := h.Get("X-Hub-Signature"); got != want1 {
		bad("X-Hub-Signature = %q, want %q (§4.3)", got, want1)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		bad("Content-Type = %q, want application/json (§4.3)", ct)
	}
	if msg := metaEscapingProblem(body); msg != "" {
		bad("body not Meta-escaped: %s (§4.3)", msg)
	}
	var env map[string]any
	if err := decodeNumbers(body, &env); err != nil {
		bad("body is not JSON: %v", err)
		return
	}
	if env["object"] != "page" {
		bad("object = %v, want \"page\" (§4.1)", env["object"])
	}
	entries, ok := env["entry"].([]any)
	if !ok || len(entries) == 0 {
		bad("no entry array (§4.1)")
		return
	}
	for _, en := range entries {
		m, _ := en.(map[string]any)
		n := 0
		for _, ch := range []string{"messaging", "standby"} {
			if arr, ok := m[ch].([]any); ok {
				n += len(arr)
			}
		}
		if n != 1 {
			bad("entry holds %d events, want exactly one per entry (§4.2)", n)
		}
		if _, ok := m["id"].(string); !ok {
			bad("entry.id %v is not a string (§1)", m["id"])
		}
		if _, ok := m["time"].(json.Number); !ok {
			bad("entry.time %v is not a number (§1)", m["time"])
		}
	}
}

// check reports every problem seen on this receiver; run at cleanup, so every
// test checks every delivery's signature and encoding without saying so.
func (r *receiver) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.problems {
		t.Errorf("app %s webhook: %s", r.appID, p)
	}
	if r.maxInFlight > 1 {
		t.Errorf("app %s: %d POSTs in flight at once, want one per (app, Page) (§4.4 ordering serial)", r.appID, r.maxInFlight)
	}
	firstPost := -1
	for i, s := range r.seq {
		if s == "POST" {
			firstPost = i
			break
		}
	}
	if firstPost >= 0 && (len(r.seq) == 0 || r.seq[0] != "GET") {
		t.Errorf("app %s: a POST arrived before the verification GET (§3)", r.appID)
	}
}

func (r *receiver) setFailing(v bool) {
	r.mu.Lock()
	r.failing = v
	r.mu.Unlock()
}

// holdPosts makes POSTs block until release, to build a queue behind one
// in-flight delivery.
func (r *receiver) holdPosts() {
	r.mu.Lock()
	r.hold = make(chan struct{})
	r.mu.Unlock()
}

func (r *receiver) release() {
	r.mu.Lock()
	if r.hold != nil {
		close(r.hold)
		r.hold = nil
	}
	r.mu.Unlock()
}

func (r *receiver) inFlightNow() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight
}

func (r *receiver) postsCopy() []hookPost {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookPost(nil), r.posts...)
}

func (r *receiver) getsCopy() []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]url.Values(nil), r.gets...)
}

// events flattens every POST received so far into events, in order.
func (r *receiver) events() []hookEvent {
	var out []hookEvent
	for i, p := range r.postsCopy() {
		var env struct {
			Entry []struct {
				ID        any              `json:"id"`
				Time      any              `json:"time"`
				Messaging []map[string]any `json:"messaging"`
				Standby   []map[string]any `json:"standby"`
			} `json:"entry"`
		}
		if err := decodeNumbers(p.Body, &env); err != nil {
			continue
		}
		for _, en := range env.Entry {
			for _, ev := range en.Messaging {
				out = append(out, hookEvent{Post: i, Channel: "messaging", EntryID: en.ID, EntryTime: en.Time, Raw: ev})
			}
			for _, ev := range en.Standby {
				out = append(out, hookEvent{Post: i, Channel: "standby", EntryID: en.ID, EntryTime: en.Time, Raw: ev})
			}
		}
	}
	return out
}

// mark is the number of events received so far; pass it to since.
func (r *receiver) mark() int { return len(r.events()) }

// since returns the events received after mark.
func (r *receiver) since(mark int) []hookEvent {
	evs := r.events()
	if mark > len(evs) {
		return nil
	}
	return evs[mark:]
}

// find returns the events matching pred.
func (r *receiver) find(pred func(hookEvent) bool) []hookEvent {
	var out []hookEvent
	for _, ev := range r.events() {
		if pred(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// waitEvent waits for the first event matching pred and returns it.
func (r *receiver) waitEvent(t *testing.T, what string, pred func(hookEvent) bool) hookEvent {
	t.Helper()
	var got hookEvent
	waitFor(t, fmt.Sprintf("app %s to receive %s", r.appID, what), func() bool {
		evs := r.find(pred)
		if len(evs) == 0 {
			return false
		}
		got = evs[0]
		return true
	})
	return got
}

// waitEventSince waits for the first event after mark matching pred.
func (r *receiver) waitEventSince(t *testing.T, mark int, what string, pred func(hookEvent) bool) hookEvent {
	t.Helper()
	var got hookEvent
	waitFor(t, fmt.Sprintf("app %s to receive %s", r.appID, what), func() bool {
		for _, ev := range r.since(mark) {
			if pred(ev) {
				got = ev
				return true
			}
		}
		return false
	})
	return got
}

// waitMid waits for the message event (user message or echo) with this mid.
func (r *receiver) waitMid(t *testing.T, mid string) hookEvent {
	t.Helper()
	return r.waitEvent(t, "message "+mid, func(ev hookEvent) bool { return msgMid(ev) == mid })
}

// kindsBefore lists the kinds of the events that arrived after mark and
// before the first event matching barrier. With serial delivery per app, an
// event that was due before the barrier must be among them.
func (r *receiver) kindsBefore(mark int, barrier func(hookEvent) bool) []string {
	var out []string
	for _, ev := range r.since(mark) {
		if barrier(ev) {
			break
		}
		out = append(out, ev.Kind())
	}
	return out
}

func msgMid(ev hookEvent) string {
	if m := ev.Obj("message"); m != nil {
		s, _ := m["mid"].(string)
		return s
	}
	return ""
}

// ---------------------------------------------------------------------------
// Control API

// app describes a test app for POST /_emulator/apps.
type app struct {
	ID, Name, Role string
	HumanAgent     bool
	NoWebhook      bool
}

// addApp creates a receiver and registers the app; it fails the test unless
// the emulator answers 200 with a page access token.
func (e *env) addApp(a app) *receiver {
	e.t.Helper()
	r := newReceiver(a.ID, "secret-"+a.ID, "verify-"+a.ID)
	e.mu.Lock()
	e.receivers = append(e.receivers, r)
	e.mu.Unlock()
	status, raw := e.registerApp(a, r)
	if status != http.StatusOK {
		e.t.Fatalf("POST /_emulator/apps %s: status %d, body %s", a.ID, status, raw)
	}
	var resp struct {
		Token string `json:"page_access_token"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil || resp.Token == "" {
		e.t.Fatalf("POST /_emulator/apps %s: want {\"page_access_token\"}, got %s (%v)", a.ID, raw, err)
	}
	e.mu.Lock()
	e.tokens[a.ID] = resp.Token
	e.secrets[a.ID] = r.secret
	e.mu.Unlock()
	return r
}

// registerApp posts the app with r's secret, verify token and URL.
func (e *env) registerApp(a app, r *receiver) (int, []byte) {
	e.t.Helper()
	body := map[string]any{
		"id": a.ID, "name": a.Name, "secret": r.secret, "verify_token": r.verifyToken,
		"role": a.Role, "human_agent": a.HumanAgent, "webhook_url": r.srv.URL + "/webhook",
	}
	if a.NoWebhook {
		body["webhook_url"] = ""
	}
	return e.control(http.MethodPost, "/_emulator/apps", body)
}

func (e *env) token(appID string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	tok, ok := e.tokens[appID]
	if !ok {
		e.t.Fatalf("no token for app %s", appID)
	}
	return tok
}

// control calls the control API with a JSON body and returns status and raw body.
func (e *env) control(method, path string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatalf("request %s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, raw
}

// controlOK calls the control API, requires a 2xx and decodes the answer.
func (e *env) controlOK(method, path string, body any) map[string]any {
	e.t.Helper()
	status, raw := e.control(method, path, body)
	if status < 200 || status > 299 {
		e.t.Fatalf("%s %s: status %d, body %s", method, path, status, raw)
	}
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := decodeNumbers(raw, &out); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %v (%s)", method, path, err, raw)
		}
	}
	return out
}

// newUser creates a person and returns the PSID.
func (e *env) newUser(first, last string) string {
	e.t.Helper()
	out := e.controlOK(http.MethodPost, "/_emulator/users", map[string]any{
		"first_name": first, "last_name": last, "profile_pic": "http://127.0.0.1:8081/pic/" + first + ".jpg",
	})
	psid, ok := out["psid"].(string)
	if !ok || !regexp.MustCompile(`^[0-9]+$`).MatchString(psid) {
		e.t.Fatalf("POST /_emulator/users: psid must be a digit string, got %#v", out["psid"])
	}
	return psid
}

// say makes the person send text and returns the mid.
func (e *env) say(psid, text string) string {
	e.t.Helper()
	out := e.controlOK(http.MethodPost, "/_emulator/users/"+psid+"/messages", map[string]any{"text": text})
	mid, ok := out["mid"].(string)
	if !ok || mid == "" {
		e.t.Fatalf("POST messages: want {\"mid\"}, got %v", out)
	}
	return mid
}

// advance moves the emulator's clock.
func (e *env) advance(d time.Duration) {
	e.t.Helper()
	e.controlOK(http.MethodPost, "/_emulator/clock", map[string]any{"advance_seconds": int64(d / time.Second)})
}

// faults replaces the runtime faults.
func (e *env) faults(f map[string]any) {
	e.t.Helper()
	full := map[string]any{
		"graph_latency_ms": 0, "graph_error_rate": 0.0, "graph_down": false,
		"webhook_drop_rate": 0.0, "webhook_duplicate_rate": 0.0, "webhook_reorder": false,
		"ignore_thread_requests": false,
	}
	for k, v := range f {
		full[k] = v
	}
	e.controlOK(http.MethodPut, "/_emulator/faults", full)
}

// state fetches GET /_emulator/state.
func (e *env) state() map[string]any {
	e.t.Helper()
	return e.controlOK(http.MethodGet, "/_emulator/state", nil)
}

// delivery is one row of GET /_emulator/deliveries.
type delivery struct {
	AppID   string
	Attempt int64
	Status  int64
	Body    string
	Raw     map[string]any
}

// deliveries fetches the delivery log for one app.
func (e *env) deliveries(appID string) []delivery {
	e.t.Helper()
	out := e.controlOK(http.MethodGet, "/_emulator/deliveries?app="+appID, nil)
	list, ok := out["deliveries"].([]any)
	if !ok {
		e.t.Fatalf("deliveries: want {\"deliveries\":[…]}, got %v", out)
	}
	var ds []delivery
	for _, it := range list {
		m, _ := it.(map[string]any)
		d := delivery{Raw: m}
		d.AppID, _ = m["app_id"].(string)
		d.Attempt = num(m["attempt"])
		d.Status = num(m["status"])
		switch b := m["body"].(type) {
		case string:
			d.Body = b
		default:
			raw, _ := json.Marshal(b)
			d.Body = string(raw)
		}
		ds = append(ds, d)
	}
	return ds
}

// ---------------------------------------------------------------------------
// Graph API

// tokenPlace says where a Graph call carries its access token (PROTOCOL.md §8.0).
type tokenPlace int

const (
	inQuery tokenPlace = iota
	inForm
	inBearer
)

// graphResp is a decoded Graph answer.
type graphResp struct {
	Status int
	Raw    []byte
	Body   map[string]any
}

// graphCall is one Graph request: path (with any version prefix), a JSON
// body or form values, and where the token goes.
type graphCall struct {
	Method string
	Path   string
	Token  string
	Place  tokenPlace
	JSON   any
	Form   url.Values
	Query  url.Values
}

func (e *env) graphDo(c graphCall) graphResp {
	e.t.Helper()
	q := url.Values{}
	for k, v := range c.Query {
		q[k] = v
	}
	form := url.Values{}
	for k, v := range c.Form {
		form[k] = v
	}
	switch c.Place {
	case inQuery:
		if c.Token != "" {
			q.Set("access_token", c.Token)
		}
	case inForm:
		form.Set("access_token", c.Token)
	}
	u := e.srv.URL + c.Path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	ctype := ""
	switch {
	case c.JSON != nil:
		b, err := json.Marshal(c.JSON)
		if err != nil {
			e.t.Fatalf("marshal: %v", err)
		}
		rd, ctype = bytes.NewReader(b), "application/json"
	case len(form) > 0:
		rd, ctype = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	}
	method := c.Method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.t.Fatalf("graph request: %v", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.Place == inBearer {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		e.t.Fatalf("graph %s %s: %v", method, c.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("graph %s: reading: %v", c.Path, err)
	}
	g := graphResp{Status: resp.StatusCode, Raw: raw}
	if err := decodeNumbers(raw, &g.Body); err != nil {
		e.t.Fatalf("graph %s %s: answer is not JSON (status %d): %s", method, c.Path, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		e.t.Errorf("graph %s %s: Content-Type %q, want application/json (§8.0)", method, c.Path, ct)
	}
	if p := metaEscapingProblem(raw); p != "" {
		e.t.Errorf("graph %s %s: answer not Meta-escaped (§8.0 uses the §4.3 serialiser): %s", method, c.Path, p)
	}
	return g
}

// post sends a JSON body to /v25.0/me/<node> as appID with the token in the query.
func (e *env) post(appID, node string, body any) graphResp {
	e.t.Helper()
	return e.graphDo(graphCall{Path: graphV + "/me/" + node, Token: e.token(appID), JSON: body})
}

// get calls GET <path> as appID with extra query parameters.
func (e *env) get(appID, path string, q url.Values) graphResp {
	e.t.Helper()
	return e.graphDo(graphCall{Method: http.MethodGet, Path: path, Token: e.token(appID), Query: q})
}

// sendText sends text as appID and requires success; it returns message_id.
func (e *env) sendText(appID, psid, text, metadata string) string {
	e.t.Helper()
	msg := map[string]any{"text": text}
	if metadata != "" {
		msg["metadata"] = metadata
	}
	g := e.post(appID, "messages", map[string]any{
		"recipient": map[string]any{"id": psid}, "messaging_type": "RESPONSE", "message": msg,
	})
	requireSuccess(e.t, g, "send as "+appID)
	id, _ := g.Body["message_id"].(string)
	return id
}

// threadOwner returns the owner as seen by appID: "" when idle ({"data":[]}).
func (e *env) threadOwner(appID, psid string) string {
	e.t.Helper()
	g := e.get(appID, graphV+"/me/thread_owner", url.Values{"recipient": {psid}})
	requireSuccess(e.t, g, "thread_owner as "+appID)
	data, ok := g.Body["data"].([]any)
	if !ok {
		e.t.Fatalf("thread_owner: want {\"data\":[…]} (§8.7), got %s", g.Raw)
	}
	if len(data) == 0 {
		return ""
	}
	first, _ := data[0].(map[string]any)
	to, _ := first["thread_owner"].(map[string]any)
	id, ok := to["app_id"].(string)
	if !ok {
		e.t.Fatalf("thread_owner.app_id must be a string (§1, §8.7), got %s", g.Raw)
	}
	return id
}

// pass calls pass_thread_control as appID; target "" omits target_app_id and
// metadata "" omits metadata.
func (e *env) pass(appID, psid, target, metadata string) graphResp {
	e.t.Helper()
	body := map[string]any{"recipient": map[string]any{"id": psid}}
	if target != "" {
		body["target_app_id"] = json.Number(target)
	}
	if metadata != "" {
		body["metadata"] = metadata
	}
	return e.post(appID, "pass_thread_control", body)
}

// take calls take_thread_control as appID.
func (e *env) take(appID, psid, metadata string) graphResp {
	e.t.Helper()
	body := map[string]any{"recipient": map[string]any{"id": psid}}
	if metadata != "" {
		body["metadata"] = metadata
	}
	return e.post(appID, "take_thread_control", body)
}

// requireSuccess fails unless the Graph call answered 200 without an error.
func requireSuccess(t *testing.T, g graphResp, what string) {
	t.Helper()
	if g.Status != http.StatusOK || g.Body["error"] != nil {
		t.Fatalf("%s: want success, got status %d %s", what, g.Status, g.Raw)
	}
}

// requireSuccessTrue fails unless the answer is exactly {"success":true}.
func requireSuccessTrue(t *testing.T, g graphResp, what string) {
	t.Helper()
	requireSuccess(t, g, what)
	if g.Body["success"] != true {
		t.Fatalf("%s: want {\"success\":true}, got %s", what, g.Raw)
	}
}

// wantErr describes an expected §9 error.
type wantErr struct {
	Status  int
	Code    int64
	Subcode int64 // 0: the answer must carry no error_subcode (or 0); -1: not checked
	Prefix  string
	Contain string
}

// checkGraphError checks the §9.1 envelope and the expected code, subcode,
// status and message.
func checkGraphError(t *testing.T, g graphResp, what string, w wantErr) {
	t.Helper()
	errObj, ok := g.Body["error"].(map[string]any)
	if !ok {
		t.Errorf("%s: want a Graph error (§9.1), got status %d %s", what, g.Status, g.Raw)
		return
	}
	if g.Status != w.Status {
		t.Errorf("%s: HTTP status %d, want %d (§9.1); body %s", what, g.Status, w.Status, g.Raw)
	}
	if c := num(errObj["code"]); c != w.Code {
		t.Errorf("%s: code %v, want %d (§9.2); body %s", what, errObj["code"], w.Code, g.Raw)
	}
	if _, isNum := errObj["code"].(json.Number); !isNum {
		t.Errorf("%s: code %v must be a JSON number", what, errObj["code"])
	}
	if w.Subcode >= 0 {
		if sc := num(errObj["error_subcode"]); sc != w.Subcode {
			t.Errorf("%s: error_subcode %v, want %d (§9.2); body %s", what, errObj["error_subcode"], w.Subcode, g.Raw)
		}
	}
	msg, _ := errObj["message"].(string)
	if w.Prefix != "" && !strings.HasPrefix(msg, w.Prefix) {
		t.Errorf("%s: message %q, want prefix %q (§9.2)", what, msg, w.Prefix)
	}
	if w.Contain != "" && !strings.Contains(msg, w.Contain) {
		t.Errorf("%s: message %q, want it to contain %q (§9.2)", what, msg, w.Contain)
	}
	if ty, _ := errObj["type"].(string); ty != "OAuthException" {
		t.Errorf("%s: type %v, want OAuthException (§9.1)", what, errObj["type"])
	}
	if ft, _ := errObj["fbtrace_id"].(string); ft == "" {
		t.Errorf("%s: missing fbtrace_id (§9.1); body %s", what, g.Raw)
	}
}

// ---------------------------------------------------------------------------
// JSON helpers

// decodeNumbers decodes JSON keeping numbers as json.Number, so a test can
// tell a number from a digit string and read ids exactly.
func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode json: %w", err)
	}
	return nil
}

// num reads a json.Number (or a float64 from a re-marshalled value) as int64;
// anything else is -1.
func num(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return -1
		}
		return i
	case float64:
		return int64(n)
	}
	return -1
}

// isNumber reports whether v decoded as a JSON number equal to the digits want.
func isNumber(v any, want string) bool {
	n, ok := v.(json.Number)
	return ok && n.String() == want
}

func hmacHex(h func() hash.Hash, secret string, data []byte) string {
	m := hmac.New(h, []byte(secret))
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil))
}

// metaEscapingProblem checks PROTOCOL.md §4.3's serialiser: ASCII only,
// and every "/" written as "\/". It returns "" when the bytes conform.
func metaEscapingProblem(b []byte) string {
	for i, c := range b {
		if c >= 0x80 {
			return fmt.Sprintf("byte 0x%02x at offset %d is not ASCII", c, i)
		}
		if c == '/' && (i == 0 || b[i-1] != '\\') {
			return fmt.Sprintf("unescaped '/' at offset %d", i)
		}
	}
	return ""
}

// proof computes appsecret_proof (PROTOCOL.md §8.0).
func proof(secret, token string) string {
	return hmacHex(sha256.New, secret, []byte(token))
}
