package demobot

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePlatform stands in for the emulator's control and Graph APIs and
// records every call the bot makes.
type fakePlatform struct {
	t *testing.T

	mu         sync.Mutex
	calls      []graphCall
	ignoreReqs bool
	passFail   int // subcode to fail the next pass with, 0 for success
	secondary  []string
}

type graphCall struct {
	Method, Path string
	Token        string
	Body         map[string]any
}

func (f *fakePlatform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			f.t.Errorf("%s %s: body is not JSON: %v", r.Method, r.URL.Path, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, graphCall{r.Method, r.URL.Path, r.URL.Query().Get("access_token"), body})
	w.Header().Set("Content-Type", "application/json")
	switch p := r.URL.Path; {
	case p == "/_emulator/apps":
		_, _ = io.WriteString(w, `{"page_access_token":"TOKEN-BOT"}`)
	case p == "/_emulator/faults":
		fmt.Fprintf(w, `{"graph_latency_ms":0,"ignore_thread_requests":%v}`, f.ignoreReqs)
	case p == "/v25.0/me/secondary_receivers":
		var data []string
		for _, id := range f.secondary {
			data = append(data, fmt.Sprintf(`{"id":%q,"name":"App %s"}`, id, id))
		}
		fmt.Fprintf(w, `{"data":[%s]}`, strings.Join(data, ","))
	case p == "/v25.0/me/messages":
		_, _ = io.WriteString(w, `{"recipient_id":"700800900","message_id":"m_x"}`)
	case p == "/v25.0/me/pass_thread_control":
		if f.passFail != 0 {
			sub := f.passFail
			f.passFail = 0
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"error":{"message":"(#100) The action is invalid since it's not the thread owner.","type":"OAuthException","code":100,"error_subcode":%d}}`, sub)
			return
		}
		_, _ = io.WriteString(w, `{"success":true}`)
	case p == "/v25.0/me/take_thread_control":
		_, _ = io.WriteString(w, `{"success":true}`)
	case strings.HasPrefix(p, "/v25.0/7"):
		_, _ = io.WriteString(w, `{"first_name":"Peter","id":"700800900"}`)
	default:
		w.WriteHeader(400)
		_, _ = io.WriteString(w, `{"error":{"message":"Unknown path components","code":2500}}`)
	}
}

// take returns the calls recorded since the last take.
func (f *fakePlatform) take() []graphCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// fakeClock is the bot's injected clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t     *testing.T
	bot   *Bot
	plat  *fakePlatform
	clock *fakeClock
	ts    int64
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	plat := &fakePlatform{t: t, secondary: []string{"263902037430900", "2500000002"}}
	srv := httptest.NewServer(plat)
	t.Cleanup(srv.Close)
	clock := &fakeClock{now: time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)}
	cfg.EmulatorURL = srv.URL
	cfg.Secret = "botsecret"
	cfg.Now = clock.Now
	cfg.Logger = quietLogger()
	b := New(cfg)
	t.Cleanup(b.Close)
	if err := b.Register(context.Background(), "http://bot.invalid/webhook"); err != nil {
		t.Fatal(err)
	}
	calls := plat.take()
	if len(calls) != 1 || calls[0].Body["role"] != "primary_receiver" || calls[0].Body["secret"] != "botsecret" ||
		calls[0].Body["webhook_url"] != "http://bot.invalid/webhook" {
		t.Fatalf("register calls = %+v", calls)
	}
	return &harness{t: t, bot: b, plat: plat, clock: clock, ts: 1700000000000}
}

// deliver posts one signed event to the bot and waits until it is handled.
func (h *harness) deliver(channel, eventJSON string) {
	h.t.Helper()
	body := `{"object":"page","entry":[{"id":"100200300","time":1,"` + channel + `":[` + eventJSON + `]}]}`
	req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", sign("botsecret", []byte(body)))
	rec := httptest.NewRecorder()
	h.bot.ServeHTTP(rec, req)
	if rec.Code != 200 {
		h.t.Fatalf("delivery answered %d: %s", rec.Code, rec.Body.String())
	}
	h.bot.waitQuiet()
}

func (h *harness) nextTS() int64 { h.ts++; return h.ts }

// say delivers a person's message on channel ("messaging" or "standby").
func (h *harness) say(channel, text, payload string) {
	qr := ""
	if payload != "" {
		qr = fmt.Sprintf(`,"quick_reply":{"payload":%q}`, payload)
	}
	ts := h.nextTS()
	h.deliver(channel, fmt.Sprintf(`{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":%d,"message":{"mid":"m_%d","text":%q%s}}`, ts, ts, text, qr))
}

func (h *harness) passToBot(metadata string) {
	meta := ""
	if metadata != "" {
		b, _ := json.Marshal(metadata)
		meta = `,"metadata":` + string(b)
	}
	h.deliver("messaging", fmt.Sprintf(`{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":%d,"pass_thread_control":{"previous_owner_app_id":2500000002,"new_owner_app_id":1500000001%s}}`, h.nextTS(), meta))
}

// texts are the texts the bot sent, in order.
func texts(calls []graphCall) []string {
	var out []string
	for _, c := range calls {
		if c.Path == "/v25.0/me/messages" {
			msg, _ := c.Body["message"].(map[string]any)
			s, _ := msg["text"].(string)
			out = append(out, s)
		}
	}
	return out
}

func callsTo(calls []graphCall, path string) []graphCall {
	var out []graphCall
	for _, c := range calls {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

func TestGreetsAnswersAndHandsOver(t *testing.T) {
	h := newHarness(t, Config{})
	h.say("messaging", "hi", "")
	calls := h.plat.take()
	if got := texts(calls); len(got) != 1 || !strings.HasPrefix(got[0], "Hi Peter! I'm the Northwind bot") {
		t.Fatalf("greeting texts = %q", got)
	}
	for _, c := range calls {
		if strings.HasPrefix(c.Path, "/v25.0/") && c.Token != "TOKEN-BOT" {
			t.Errorf("%s called with token %q", c.Path, c.Token)
		}
	}
	msg := callsTo(calls, "/v25.0/me/messages")[0].Body
	if msg["messaging_type"] != "RESPONSE" {
		t.Errorf("messaging_type = %v", msg["messaging_type"])
	}
	if qr, _ := msg["message"].(map[string]any)["quick_replies"].([]any); len(qr) != 3 {
		t.Errorf("quick replies = %v", qr)
	}

	h.say("messaging", "Opening hours", payloadHours)
	if got := texts(h.plat.take()); len(got) != 1 || !strings.Contains(got[0], "Monday to Saturday") {
		t.Fatalf("hours texts = %q", got)
	}

	h.say("messaging", "I was charged twice, I want to talk to a human", "")
	calls = h.plat.take()
	if got := texts(calls); len(got) != 1 || got[0] != textConnecting {
		t.Fatalf("handover texts = %q", got)
	}
	passes := callsTo(calls, "/v25.0/me/pass_thread_control")
	if len(passes) != 1 {
		t.Fatalf("passes = %+v", passes)
	}
	if target := fmt.Sprint(passes[0].Body["target_app_id"]); target != "2.500000002e+09" && target != "2500000002" {
		t.Errorf("target_app_id = %v, want 2500000002 (the first non-Inbox secondary)", passes[0].Body["target_app_id"])
	}
	var meta map[string]string
	if err := json.Unmarshal([]byte(passes[0].Body["metadata"].(string)), &meta); err != nil {
		t.Fatalf("metadata not JSON: %v", err)
	}
	if meta["reason"] != reasonAskedForHuman || meta["team"] != teamBilling ||
		meta["asked"] != "I was charged twice, I want to talk to a human" || !strings.Contains(meta["summary"], "Peter") {
		t.Errorf("metadata = %v", meta)
	}

	// While Baton owns the thread the bot only listens.
	h.say("standby", "hello? where is my order", "")
	if calls := h.plat.take(); len(calls) != 0 {
		t.Fatalf("bot acted on standby: %+v", calls)
	}

	h.passToBot(`{"v":1,"outcome":"resolved","note":"Refund issued","tags":["billing"],"agent":{"id":"u_12","name":"Ana"}}`)
	got := texts(h.plat.take())
	if len(got) != 1 || !strings.HasPrefix(got[0], "Glad that's sorted!") || !strings.Contains(got[0], "Ana") {
		t.Fatalf("hand-back texts = %q", got)
	}

	// The bot owns the thread again and answers.
	h.say("messaging", "how much is shipping", "")
	if got := texts(h.plat.take()); len(got) != 1 || !strings.Contains(got[0], "Standard shipping") {
		t.Fatalf("after hand-back texts = %q", got)
	}
}

func TestTwoFailuresHandOver(t *testing.T) {
	h := newHarness(t, Config{})
	h.say("messaging", "hello", "")
	h.plat.take()
	h.say("messaging", "purple elephants", "")
	if got := texts(h.plat.take()); len(got) != 1 || got[0] != notUnderstood {
		t.Fatalf("first failure texts = %q", got)
	}
	h.say("messaging", "what is the colour of the wind", "")
	calls := h.plat.take()
	passes := callsTo(calls, "/v25.0/me/pass_thread_control")
	if len(passes) != 1 {
		t.Fatalf("no pass after two failures: %+v", calls)
	}
	var meta map[string]string
	_ = json.Unmarshal([]byte(passes[0].Body["metadata"].(string)), &meta)
	if meta["reason"] != reasonBotFailed || meta["team"] != teamSupport || meta["asked"] != "what is the colour of the wind" {
		t.Errorf("metadata = %v", meta)
	}
	if got := texts(calls); len(got) != 1 || !strings.Contains(got[0], textConnecting) {
		t.Errorf("texts = %q", got)
	}
}

func TestUnderstoodMessageResetsFailures(t *testing.T) {
	h := newHarness(t, Config{})
	for _, text := range []string{"hello", "blorp", "opening hours", "blorp"} {
		h.say("messaging", text, "")
	}
	if passes := callsTo(h.plat.take(), "/v25.0/me/pass_thread_control"); len(passes) != 0 {
		t.Fatalf("passed although failures were not in a row: %+v", passes)
	}
}

func TestDuplicateDeliveryAnsweredOnce(t *testing.T) {
	h := newHarness(t, Config{})
	ev := `{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":5,"message":{"mid":"m_dup","text":"hi"}}`
	h.deliver("messaging", ev)
	h.deliver("messaging", ev)
	if got := texts(h.plat.take()); len(got) != 1 {
		t.Fatalf("texts = %q, want one greeting", got)
	}
}

func TestHandBackVariants(t *testing.T) {
	tests := []struct {
		name     string
		metadata string
		want     string // prefix of the reply, "" for none
	}{
		{"page inbox", "Pass thread control from Page Inbox", textNeutralBack},
		{"no metadata", "", textNeutralBack},
		{"unresolved", `{"v":1,"outcome":"unresolved"}`, "Sorry we couldn't fix it yet"},
		{"escalated", `{"v":1,"outcome":"escalated"}`, "Your case was escalated"},
		{"idle", `{"v":1,"outcome":"idle"}`, "Looks like our team got busy"},
		{"spam", `{"v":1,"outcome":"spam"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.passToBot(tt.metadata)
			got := texts(h.plat.take())
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("texts = %q, want none", got)
				}
				return
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Fatalf("texts = %q, want one starting %q", got, tt.want)
			}
		})
	}
}

func TestPassToAnotherAppIsNotControl(t *testing.T) {
	h := newHarness(t, Config{})
	// routing-cr broadcasts every pass: one to Baton must not wake the bot.
	h.deliver("messaging", `{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":9,"pass_thread_control":{"previous_owner_app_id":"1500000001","new_owner_app_id":"2500000002","metadata":"{\"outcome\":\"resolved\"}"}}`)
	if calls := h.plat.take(); len(calls) != 0 {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestRequestHonouredAfterDelay(t *testing.T) {
	h := newHarness(t, Config{RequestDelay: 2 * time.Second})
	h.say("messaging", "hi", "")
	h.plat.take()
	h.deliver("messaging", `{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":20,"request_thread_control":{"requested_owner_app_id":2500000002,"metadata":"{\"v\":1,\"reason\":\"VIP\"}"}}`)
	h.bot.fireDue()
	h.bot.waitQuiet()
	if calls := h.plat.take(); len(calls) != 0 {
		t.Fatalf("acted before RequestDelay: %+v", calls)
	}
	h.clock.advance(2 * time.Second)
	h.bot.fireDue()
	h.bot.waitQuiet()
	calls := h.plat.take()
	passes := callsTo(calls, "/v25.0/me/pass_thread_control")
	if len(callsTo(calls, "/_emulator/faults")) != 1 || len(passes) != 1 {
		t.Fatalf("calls = %+v", calls)
	}
	if fmt.Sprint(passes[0].Body["target_app_id"]) != "2.500000002e+09" {
		t.Errorf("target = %v", passes[0].Body["target_app_id"])
	}
	h.bot.fireDue()
	h.bot.waitQuiet()
	if calls := h.plat.take(); len(calls) != 0 {
		t.Fatalf("request honoured twice: %+v", calls)
	}
}

func TestRequestIgnoredByFault(t *testing.T) {
	h := newHarness(t, Config{RequestDelay: -1})
	h.plat.mu.Lock()
	h.plat.ignoreReqs = true
	h.plat.mu.Unlock()
	h.deliver("messaging", `{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":20,"request_thread_control":{"requested_owner_app_id":"263902037430900"}}`)
	calls := h.plat.take()
	if len(callsTo(calls, "/_emulator/faults")) != 1 || len(callsTo(calls, "/v25.0/me/pass_thread_control")) != 0 {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestRequestTakesFirstWhenNotOwner(t *testing.T) {
	h := newHarness(t, Config{RequestDelay: -1})
	h.plat.mu.Lock()
	h.plat.passFail = 2534037
	h.plat.mu.Unlock()
	// The Page Inbox owns the thread (the bot heard it on standby) and Baton asks.
	h.deliver("standby", `{"sender":{"id":"100200300"},"recipient":{"id":"700800900"},"timestamp":30,"message":{"is_echo":true,"app_id":263902037430900,"mid":"m_inbox","text":"hello from the inbox"}}`)
	h.deliver("messaging", `{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":31,"request_thread_control":{"requested_owner_app_id":2500000002}}`)
	var paths []string
	for _, c := range h.plat.take() {
		paths = append(paths, c.Path)
	}
	want := []string{"/_emulator/faults", "/v25.0/me/pass_thread_control", "/v25.0/me/take_thread_control", "/v25.0/me/pass_thread_control"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Fatalf("paths = %v, want %v", paths, want)
	}
}

func TestTakeBackAfterSilence(t *testing.T) {
	h := newHarness(t, Config{TakeBackAfter: 10 * time.Minute})
	h.say("messaging", "talk to a person", "")
	h.plat.take()

	h.clock.advance(9 * time.Minute)
	// Baton speaks: the silence clock restarts.
	h.deliver("standby", `{"sender":{"id":"100200300"},"recipient":{"id":"700800900"},"timestamp":40,"message":{"is_echo":true,"app_id":2500000002,"mid":"m_baton","text":"On it!"}}`)
	h.clock.advance(9 * time.Minute)
	h.bot.fireDue()
	h.bot.waitQuiet()
	if calls := h.plat.take(); len(calls) != 0 {
		t.Fatalf("took back although Baton spoke 9 min ago: %+v", calls)
	}
	// The person speaking does not count as the Secondary's activity.
	h.say("standby", "hello??", "")
	h.clock.advance(time.Minute)
	h.bot.fireDue()
	h.bot.waitQuiet()
	calls := h.plat.take()
	takes := callsTo(calls, "/v25.0/me/take_thread_control")
	if len(takes) != 1 || takes[0].Body["metadata"] != "secondary silent for 10m" {
		t.Fatalf("takes = %+v", takes)
	}
	if got := texts(calls); len(got) != 1 || !strings.HasPrefix(got[0], "Looks like our team got busy") {
		t.Fatalf("texts = %q", got)
	}
	h.clock.advance(time.Hour)
	h.bot.fireDue()
	h.bot.waitQuiet()
	if calls := h.plat.take(); len(calls) != 0 {
		t.Fatalf("took back twice: %+v", calls)
	}
}

func TestNoTakeBackWhenDisabled(t *testing.T) {
	h := newHarness(t, Config{})
	h.say("messaging", "talk to a person", "")
	h.plat.take()
	h.clock.advance(72 * time.Hour)
	h.bot.fireDue()
	h.bot.waitQuiet()
	if calls := h.plat.take(); len(calls) != 0 {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestNoSecondaryTellsThePerson(t *testing.T) {
	h := newHarness(t, Config{})
	h.plat.mu.Lock()
	h.plat.secondary = nil
	h.plat.mu.Unlock()
	h.say("messaging", "human please", "")
	calls := h.plat.take()
	if len(callsTo(calls, "/v25.0/me/pass_thread_control")) != 0 {
		t.Fatalf("passed with no secondary: %+v", calls)
	}
	if got := texts(calls); len(got) != 2 || got[1] != textNoTeam {
		t.Fatalf("texts = %q", got)
	}
}

func TestGraphBeforeRegister(t *testing.T) {
	b := New(Config{EmulatorURL: "http://127.0.0.1:1", Logger: quietLogger()})
	defer b.Close()
	if err := b.sendText(context.Background(), "1", "x", nil); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("err = %v", err)
	}
}

func TestOwnTakeHeardInRoutingCR(t *testing.T) {
	h := newHarness(t, Config{TakeBackAfter: 10 * time.Minute})
	h.say("messaging", "talk to a person", "")
	h.plat.take()
	// routing-cr tells every subscriber about a take, the taker included: the
	// bot owns the thread again and has nothing to take back.
	h.deliver("messaging", `{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":50,"take_thread_control":{"previous_owner_app_id":2500000002,"new_owner_app_id":1500000001,"metadata":"manual"}}`)
	h.clock.advance(time.Hour)
	h.bot.fireDue()
	h.bot.waitQuiet()
	if calls := h.plat.take(); len(calls) != 0 {
		t.Fatalf("calls = %+v", calls)
	}
}

func TestPostbackGetStarted(t *testing.T) {
	h := newHarness(t, Config{})
	h.deliver("messaging", `{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":60,"postback":{"title":"Get Started","payload":"GET_STARTED"}}`)
	h.deliver("messaging", `{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":61,"postback":{"mid":"m_pb","title":"Talk to a person","payload":"TALK_TO_HUMAN"}}`)
	calls := h.plat.take()
	if got := texts(calls); len(got) != 2 || !strings.HasPrefix(got[0], "Hi Peter!") || got[1] != textConnecting {
		t.Fatalf("texts = %q", got)
	}
	if len(callsTo(calls, "/v25.0/me/pass_thread_control")) != 1 {
		t.Fatalf("calls = %+v", calls)
	}
}
