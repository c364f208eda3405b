package emulator_test

// Conformance suite for the Messenger Platform emulator, written from
// PROTOCOL.md §15 ("Emulator fidelity checklist") and SPEC.md ("The
// emulator's interface") alone. Every test drives the emulator over real
// HTTP: the control API, the Graph API, and webhook receivers of its own.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	midRe       = regexp.MustCompile(`^m_[A-Za-z0-9_-]{40,}$`)
	challengeRe = regexp.MustCompile(`^[0-9]{9,10}$`)
)

// fixture is the usual cast: the bot as Primary, Baton as a Secondary with
// the Human Agent flag, optionally a third Secondary, and one person.
type fixture struct {
	*env
	bot, baton, other *receiver
	psid              string
}

func newFixture(t *testing.T, mode string, withOther bool) *fixture {
	t.Helper()
	e := newEnv(t, mode)
	f := &fixture{env: e}
	f.bot = e.addApp(app{ID: botID, Name: "Demo Bot", Role: "primary_receiver"})
	f.baton = e.addApp(app{ID: batonID, Name: "Baton", Role: "secondary_receiver", HumanAgent: true})
	if withOther {
		f.other = e.addApp(app{ID: otherID, Name: "Other Inbox", Role: "secondary_receiver"})
	}
	// Registration's app_roles events must be through before a test takes
	// marks, or they would show up as noise between a mark and a barrier.
	for _, r := range f.receivers() {
		r.waitEvent(t, "app_roles", func(ev hookEvent) bool { return ev.Kind() == "app_roles" })
	}
	f.psid = e.newUser("Peter", "Chang")
	return f
}

func (f *fixture) receivers() []*receiver {
	rs := []*receiver{f.bot, f.baton}
	if f.other != nil {
		rs = append(rs, f.other)
	}
	return rs
}

// marks remembers how many events each receiver has seen.
func (f *fixture) marks() map[*receiver]int {
	m := map[*receiver]int{}
	for _, r := range f.receivers() {
		m[r] = r.mark()
	}
	return m
}

// barrier makes the person write once more and returns, per receiver, the
// kinds of the events that arrived after its mark and before that message.
// Because delivery is serial per (app, Page), anything the emulator queued
// before the barrier shows up here; it is how the suite proves silence
// without sleeping.
func (f *fixture) barrier(marks map[*receiver]int) map[*receiver][]string {
	f.t.Helper()
	mid := f.say(f.psid, "barrier")
	out := map[*receiver][]string{}
	for _, r := range f.receivers() {
		r.waitMid(f.t, mid)
		out[r] = r.kindsBefore(marks[r], func(ev hookEvent) bool { return msgMid(ev) == mid })
	}
	return out
}

// ofKind matches events of one kind in the fixture's thread.
func ofKind(kind, psid string) func(hookEvent) bool {
	return func(ev hookEvent) bool { return ev.Kind() == kind && threadPSID(ev) == psid }
}

// threadPSID is PROTOCOL.md §5's thread key: recipient for echoes, else sender.
func threadPSID(ev hookEvent) string {
	side := "sender"
	if ev.Kind() == "echo" {
		side = "recipient"
	}
	m, _ := ev.Raw[side].(map[string]any)
	s, _ := m["id"].(string)
	return s
}

func idOf(ev hookEvent, side string) any {
	m, ok := ev.Raw[side].(map[string]any)
	if !ok {
		return nil
	}
	return m["id"]
}

// checkWrapper checks the §5 wrapper of a person's event: string ids, the
// entry id, and a millisecond timestamp at the emulator's clock.
func checkWrapper(t *testing.T, ev hookEvent, psid string, clockMS int64) {
	t.Helper()
	if idOf(ev, "sender") != psid {
		t.Errorf("%s: sender.id = %#v, want string %q (§1)", ev.Kind(), idOf(ev, "sender"), psid)
	}
	if idOf(ev, "recipient") != pageID {
		t.Errorf("%s: recipient.id = %#v, want string %q (§1)", ev.Kind(), idOf(ev, "recipient"), pageID)
	}
	if ev.EntryID != pageID {
		t.Errorf("%s: entry.id = %#v, want %q (§4.1)", ev.Kind(), ev.EntryID, pageID)
	}
	if ts := num(ev.Raw["timestamp"]); ts != clockMS {
		t.Errorf("%s: timestamp = %v, want %d, the clock in epoch ms (§1)", ev.Kind(), ev.Raw["timestamp"], clockMS)
	}
	if et := num(ev.EntryTime); et < clockMS-1000 || et > clockMS+1000 {
		t.Errorf("%s: entry.time = %v, want epoch ms near %d (§1)", ev.Kind(), ev.EntryTime, clockMS)
	}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// ---------------------------------------------------------------------------

func TestConformanceDefaultPageAndStateShape(t *testing.T) {
	f := newFixture(t, "", false)
	if got := f.emu.PageID(); got != pageID {
		t.Errorf("PageID() = %q, want default %q", got, pageID)
	}
	f.say(f.psid, "hello")
	f.bot.waitEvent(t, "the message", ofKind("message", f.psid))
	f.advance(10 * time.Second)
	f.advance(5 * time.Second)

	st := f.state()
	page, _ := st["page"].(map[string]any)
	if page["id"] != pageID || page["name"] != "Conformance Page" {
		t.Errorf("state.page = %v, want id %q and the configured name", page, pageID)
	}
	if st["mode"] != "routing" {
		t.Errorf("state.mode = %v, want the default \"routing\" (§2)", st["mode"])
	}
	if c := num(st["clock"]); c != ms(baseTime)+15000 {
		t.Errorf("state.clock = %v, want %d: clock advances add up (SPEC)", st["clock"], ms(baseTime)+15000)
	}
	apps, _ := st["apps"].([]any)
	seen := map[string]map[string]any{}
	for _, a := range apps {
		m, _ := a.(map[string]any)
		id, ok := m["id"].(string)
		if !ok {
			t.Errorf("state.apps[].id = %#v, want a digit string", m["id"])
			continue
		}
		seen[id] = m
		for _, k := range []string{"name", "role", "webhook_url"} {
			if _, ok := m[k].(string); !ok {
				t.Errorf("state app %s: %s = %#v, want a string", id, k, m[k])
			}
		}
		for _, k := range []string{"human_agent", "subscribed"} {
			if _, ok := m[k].(bool); !ok {
				t.Errorf("state app %s: %s = %#v, want a bool", id, k, m[k])
			}
		}
	}
	if seen[botID]["role"] != "primary_receiver" || seen[batonID]["role"] != "secondary_receiver" {
		t.Errorf("state roles: bot %v, baton %v", seen[botID]["role"], seen[batonID]["role"])
	}
	if seen[batonID]["human_agent"] != true || seen[botID]["human_agent"] != false {
		t.Errorf("state human_agent: bot %v, baton %v", seen[botID]["human_agent"], seen[batonID]["human_agent"])
	}
	if seen[botID]["subscribed"] != true {
		t.Errorf("state: a verified app must be subscribed, got %v", seen[botID]["subscribed"])
	}
	if u, _ := seen[batonID]["webhook_url"].(string); !strings.HasPrefix(u, f.baton.srv.URL) {
		t.Errorf("state webhook_url = %v, want %s…", seen[batonID]["webhook_url"], f.baton.srv.URL)
	}

	users, _ := st["users"].([]any)
	foundUser := false
	for _, u := range users {
		m, _ := u.(map[string]any)
		if m["psid"] == f.psid {
			foundUser = true
			if m["first_name"] != "Peter" || m["last_name"] != "Chang" {
				t.Errorf("state user = %v, want Peter Chang", m)
			}
		}
	}
	if !foundUser {
		t.Errorf("state.users lacks psid %s: %v", f.psid, users)
	}
	threads, _ := st["threads"].([]any)
	foundThread := false
	for _, th := range threads {
		m, _ := th.(map[string]any)
		if m["psid"] != f.psid {
			continue
		}
		foundThread = true
		if m["owner_app_id"] != botID {
			t.Errorf("state thread owner_app_id = %#v, want string %q after the first message (§7)", m["owner_app_id"], botID)
		}
		if at := num(m["last_user_message_at"]); at != ms(baseTime) {
			t.Errorf("state thread last_user_message_at = %v, want %d (epoch ms)", m["last_user_message_at"], ms(baseTime))
		}
	}
	if !foundThread {
		t.Errorf("state.threads lacks psid %s: %v", f.psid, threads)
	}

	status, raw := f.control(http.MethodPost, "/_emulator/users/999999999/messages", map[string]any{"text": "x"})
	var ce struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if status < 400 || status > 499 || json.Unmarshal(raw, &ce) != nil || ce.Error.Message == "" {
		t.Errorf("control API error for an unknown person: status %d %s, want 4xx {\"error\":{\"message\"}} (SPEC)", status, raw)
	}
}

func TestConformanceVerificationAndAppRoles(t *testing.T) {
	e := newEnv(t, "")
	bot := e.addApp(app{ID: botID, Name: "Demo Bot", Role: "primary_receiver"})
	baton := e.addApp(app{ID: batonID, Name: "Baton", Role: "secondary_receiver"})

	var challenges []string
	for _, r := range []*receiver{bot, baton} {
		gets := r.getsCopy()
		if len(gets) == 0 {
			t.Fatalf("app %s: no verification GET before registration answered (§3)", r.appID)
		}
		q := gets[0]
		if q.Get("hub.mode") != "subscribe" || q.Get("hub.verify_token") != r.verifyToken {
			t.Errorf("app %s: GET query %v, want hub.mode=subscribe and its verify token (§3)", r.appID, q)
		}
		if c := q.Get("hub.challenge"); !challengeRe.MatchString(c) {
			t.Errorf("app %s: hub.challenge %q, want 9–10 digits (§3)", r.appID, c)
		} else {
			challenges = append(challenges, c)
		}
	}
	if len(challenges) == 2 && challenges[0] == challenges[1] {
		t.Errorf("both apps got challenge %s; it must be random (§3)", challenges[0])
	}

	for _, tc := range []struct {
		r    *receiver
		role string
	}{{bot, "primary_receiver"}, {baton, "secondary_receiver"}} {
		ev := tc.r.waitEvent(t, "app_roles", func(ev hookEvent) bool { return ev.Kind() == "app_roles" })
		if ev.Channel != "messaging" {
			t.Errorf("app %s: app_roles on %s, want messaging (§6)", tc.r.appID, ev.Channel)
		}
		if _, has := ev.Raw["sender"]; has {
			t.Errorf("app %s: app_roles has a sender key; it must not (§5.8)", tc.r.appID)
		}
		if idOf(ev, "recipient") != pageID {
			t.Errorf("app %s: app_roles recipient.id = %#v, want %q (§5.8)", tc.r.appID, idOf(ev, "recipient"), pageID)
		}
		if _, ok := ev.Raw["timestamp"].(json.Number); !ok {
			t.Errorf("app %s: app_roles timestamp %#v is not a number", tc.r.appID, ev.Raw["timestamp"])
		}
		roles := ev.Obj("app_roles")
		want := map[string]any{tc.r.appID: []any{tc.role}}
		if len(roles) != 1 || !slices.Equal(anyStrings(roles[tc.r.appID]), []string{tc.role}) {
			t.Errorf("app %s: app_roles = %v, want only its own key %v (§5.8 emit)", tc.r.appID, roles, want)
		}
	}

	// An app that answers the challenge wrongly is refused and gets no POST.
	bad := newReceiver(otherID, "secret-bad", "verify-bad")
	e.mu.Lock()
	e.receivers = append(e.receivers, bad)
	e.mu.Unlock()
	bad.mu.Lock()
	bad.challengeOK = false
	bad.mu.Unlock()
	status, raw := e.registerApp(app{ID: otherID, Name: "Bad", Role: "secondary_receiver"}, bad)
	if status < 400 || status > 499 {
		t.Errorf("registering an app with a wrong challenge answer: status %d %s, want 4xx (§3 accepts only 200 with an identical body)", status, raw)
	}
	if len(bad.getsCopy()) == 0 {
		t.Errorf("the bad app was never sent the verification GET (§3)")
	}
	psid := e.newUser("Ana", "Lopez")
	mid := e.say(psid, "hello")
	baton.waitMid(t, mid)
	bot.waitMid(t, mid)
	if n := len(bad.postsCopy()); n != 0 {
		t.Errorf("an app that failed verification got %d POSTs, want none (§3)", n)
	}
}

// anyStrings converts a decoded JSON array of strings.
func anyStrings(v any) []string {
	arr, _ := v.([]any)
	out := []string{}
	for _, x := range arr {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestConformanceSinglePrimary(t *testing.T) {
	e := newEnv(t, "")
	first := e.addApp(app{ID: botID, Name: "Bot One", Role: "primary_receiver"})
	first.waitEvent(t, "app_roles", func(ev hookEvent) bool { return ev.Kind() == "app_roles" })
	mark := first.mark()
	second := e.addApp(app{ID: otherID, Name: "Bot Two", Role: "primary_receiver"})

	roles := map[string]any{}
	for _, a := range e.state()["apps"].([]any) {
		m := a.(map[string]any)
		roles[m["id"].(string)] = m["role"]
	}
	if roles[botID] != "none" || roles[otherID] != "primary_receiver" {
		t.Errorf("roles after a second Primary = %v, want %s none and %s primary_receiver (SPEC: at most one Primary)", roles, botID, otherID)
	}
	ev := first.waitEventSince(t, mark, "app_roles after demotion", func(ev hookEvent) bool { return ev.Kind() == "app_roles" })
	if r := ev.Obj("app_roles"); len(r) != 1 || r[botID] == nil || len(anyStrings(r[botID])) != 0 {
		t.Errorf("demoted app's app_roles = %v, want {%q:[]} (§5.8)", r, botID)
	}
	ev2 := second.waitEvent(t, "app_roles", func(ev hookEvent) bool { return ev.Kind() == "app_roles" })
	if r := ev2.Obj("app_roles"); !slices.Equal(anyStrings(r[otherID]), []string{"primary_receiver"}) {
		t.Errorf("new Primary's app_roles = %v, want {%q:[\"primary_receiver\"]}", r, otherID)
	}
}

func TestConformanceUserMessageRouting(t *testing.T) {
	f := newFixture(t, "", true)
	// Routing: a new thread is idle (§2, §7).
	if owner := f.threadOwner(botID, f.psid); owner != "" {
		t.Errorf("new thread owner = %q, want idle {\"data\":[]} (§7)", owner)
	}
	marks := f.marks()
	mid := f.say(f.psid, "hi there")
	want := map[*receiver]string{f.bot: "messaging", f.baton: "standby", f.other: "standby"}
	for r, ch := range want {
		ev := r.waitMid(t, mid)
		if ev.Channel != ch {
			t.Errorf("app %s got the first message on %s, want %s (§6, §7: the Primary becomes owner)", r.appID, ev.Channel, ch)
		}
		checkWrapper(t, ev, f.psid, ms(baseTime))
		if ev.Obj("message")["text"] != "hi there" {
			t.Errorf("app %s: message.text = %v", r.appID, ev.Obj("message")["text"])
		}
		if !midRe.MatchString(mid) {
			t.Errorf("mid %q, want m_ + ≥40 URL-safe chars (§1)", mid)
		}
		if kinds := r.kindsBefore(marks[r], func(ev hookEvent) bool { return msgMid(ev) == mid }); len(kinds) != 0 {
			t.Errorf("app %s got %v before the message; automatic acquisition is silent (§6)", r.appID, kinds)
		}
	}
	if owner := f.threadOwner(botID, f.psid); owner != botID {
		t.Errorf("owner after the first message = %q, want the Primary %s (§7)", owner, botID)
	}
}

func TestConformanceIdleWithoutPrimaryGoesToAll(t *testing.T) {
	e := newEnv(t, "")
	baton := e.addApp(app{ID: batonID, Name: "Baton", Role: "secondary_receiver"})
	other := e.addApp(app{ID: otherID, Name: "Other", Role: "secondary_receiver"})
	psid := e.newUser("Ana", "Lopez")
	mid := e.say(psid, "anyone?")
	for _, r := range []*receiver{baton, other} {
		if ev := r.waitMid(t, mid); ev.Channel != "messaging" {
			t.Errorf("idle thread, no Primary: app %s got %s, want messaging to all (§6)", r.appID, ev.Channel)
		}
	}
	if owner := e.threadOwner(batonID, psid); owner != "" {
		t.Errorf("with no Primary the thread stays idle, got owner %q (§7)", owner)
	}
}

func TestConformanceASCIIBodiesAndSignatures(t *testing.T) {
	f := newFixture(t, "", false)
	const text = "äöå 😀 a/b"
	mid := f.say(f.psid, text)
	ev := f.bot.waitMid(t, mid)
	body := string(f.bot.postsCopy()[ev.Post].Body)
	for _, frag := range []string{`\u00e4\u00f6\u00e5`, `\ud83d\ude00`, `a\/b`} {
		if !strings.Contains(body, frag) {
			t.Errorf("raw body lacks %s (§4.3); body %s", frag, body)
		}
	}
	if strings.Contains(body, `\u00E4`) {
		t.Errorf("\\u escapes must be lowercase hex (§4.3); body %s", body)
	}
	if got := ev.Obj("message")["text"]; got != text {
		t.Errorf("decoded text = %q, want %q", got, text)
	}
	// The receiver's cleanup check verifies both HMACs over these raw bytes
	// and that no byte is ≥ 0x80; make that explicit for this body too.
	if p := metaEscapingProblem([]byte(body)); p != "" {
		t.Errorf("body: %s", p)
	}
}

func TestConformanceSendEchoDeliveryAndConversation(t *testing.T) {
	f := newFixture(t, "", false)
	userMid := f.say(f.psid, "I need help")
	f.bot.waitMid(t, userMid)

	g := f.post(botID, "messages", map[string]any{
		"recipient": map[string]any{"id": f.psid}, "messaging_type": "RESPONSE",
		"message": map[string]any{"text": "Hello from the bot", "metadata": "bot:42"},
	})
	requireSuccess(t, g, "send")
	msgID, _ := g.Body["message_id"].(string)
	if !midRe.MatchString(msgID) {
		t.Errorf("message_id = %q, want m_ + ≥40 URL-safe chars (§1, §8.1)", msgID)
	}
	if g.Body["recipient_id"] != f.psid {
		t.Errorf("recipient_id = %#v, want %q (§8.1)", g.Body["recipient_id"], f.psid)
	}

	for r, ch := range map[*receiver]string{f.bot: "messaging", f.baton: "standby"} {
		ev := r.waitMid(t, msgID)
		if ev.Kind() != "echo" || ev.Channel != ch {
			t.Errorf("app %s: %s on %s, want an echo on %s (§5.2, §6)", r.appID, ev.Kind(), ev.Channel, ch)
		}
		m := ev.Obj("message")
		if !isNumber(m["app_id"], botID) {
			t.Errorf("app %s: echo app_id = %#v, want the number %s (§1, §5.2)", r.appID, m["app_id"], botID)
		}
		if m["metadata"] != "bot:42" || m["text"] != "Hello from the bot" {
			t.Errorf("app %s: echo metadata %v text %v", r.appID, m["metadata"], m["text"])
		}
		if idOf(ev, "sender") != pageID || idOf(ev, "recipient") != f.psid {
			t.Errorf("app %s: echo sender %v recipient %v, want Page → PSID (§5.2)", r.appID, idOf(ev, "sender"), idOf(ev, "recipient"))
		}
		if _, ok := ev.Raw["timestamp"].(json.Number); !ok {
			t.Errorf("echo timestamp %#v is not a number", ev.Raw["timestamp"])
		}
	}

	// Without metadata the echo carries no metadata key.
	plainID := f.sendText(botID, f.psid, "no metadata here", "")
	if m := f.bot.waitMid(t, plainID).Obj("message"); m != nil {
		if _, has := m["metadata"]; has {
			t.Errorf("echo of a send without metadata has metadata %v (§5.2)", m["metadata"])
		}
	}

	// The person's client acknowledges delivery: mids and watermark, no timestamp.
	dev := f.bot.waitEvent(t, "a delivery of "+msgID, func(ev hookEvent) bool {
		d := ev.Obj("delivery")
		return d != nil && slices.Contains(anyStrings(d["mids"]), msgID)
	})
	if dev.Channel != "messaging" {
		t.Errorf("delivery on %s, want messaging for the owner (§6)", dev.Channel)
	}
	if _, ok := dev.Obj("delivery")["watermark"].(json.Number); !ok {
		t.Errorf("delivery watermark %#v is not a number (§5.4)", dev.Obj("delivery")["watermark"])
	}
	if _, has := dev.Raw["timestamp"]; has {
		t.Errorf("delivery has a timestamp; the emulator omits it (§5.4)")
	}

	// Sender actions answer recipient_id only.
	sa := f.post(botID, "messages", map[string]any{"recipient": map[string]any{"id": f.psid}, "sender_action": "typing_on"})
	requireSuccess(t, sa, "typing_on")
	if _, has := sa.Body["message_id"]; has || sa.Body["recipient_id"] != f.psid {
		t.Errorf("sender action answer = %s, want {\"recipient_id\":%q} (§8.2)", sa.Raw, f.psid)
	}

	// Reads: owner on messaging, others on standby.
	f.controlOK(http.MethodPost, "/_emulator/users/"+f.psid+"/read", map[string]any{})
	for r, ch := range map[*receiver]string{f.bot: "messaging", f.baton: "standby"} {
		ev := r.waitEvent(t, "read", ofKind("read", f.psid))
		if ev.Channel != ch {
			t.Errorf("app %s: read on %s, want %s (§6)", r.appID, ev.Channel, ch)
		}
		if _, ok := ev.Obj("read")["watermark"].(json.Number); !ok {
			t.Errorf("read watermark %#v is not a number (§5.4)", ev.Obj("read")["watermark"])
		}
	}

	// The person's view: their message, then the page's with the sending app.
	conv := f.controlOK(http.MethodGet, "/_emulator/users/"+f.psid+"/conversation", nil)
	msgs, _ := conv["messages"].([]any)
	var userMsg, pageMsg map[string]any
	for _, it := range msgs {
		m, _ := it.(map[string]any)
		for _, k := range []string{"mid", "from", "text", "timestamp", "seen"} {
			if _, has := m[k]; !has {
				t.Errorf("conversation message %v lacks %q (SPEC shapes)", m, k)
			}
		}
		if _, ok := m["attachments"].([]any); !ok && m["attachments"] != nil {
			t.Errorf("conversation attachments = %#v, want an array", m["attachments"])
		}
		switch m["mid"] {
		case userMid:
			userMsg = m
		case msgID:
			pageMsg = m
		}
	}
	if userMsg == nil || pageMsg == nil {
		t.Fatalf("conversation lacks the user message or the page message: %v", msgs)
	}
	if userMsg["from"] != "user" || userMsg["app_id"] != nil {
		t.Errorf("user message from %v app_id %#v, want \"user\" and null", userMsg["from"], userMsg["app_id"])
	}
	if pageMsg["from"] != "page" || pageMsg["app_id"] != botID || pageMsg["text"] != "Hello from the bot" {
		t.Errorf("page message = %v, want from page, app_id %q", pageMsg, botID)
	}
	if _, ok := pageMsg["timestamp"].(json.Number); !ok {
		t.Errorf("conversation timestamp %#v is not a number", pageMsg["timestamp"])
	}
	if _, ok := pageMsg["seen"].(bool); !ok {
		t.Errorf("conversation seen %#v is not a bool", pageMsg["seen"])
	}
}

func TestConformancePostbackPayloadOnlyForOwner(t *testing.T) {
	f := newFixture(t, "", false)
	f.bot.waitMid(t, f.say(f.psid, "start"))
	f.controlOK(http.MethodPost, "/_emulator/users/"+f.psid+"/postbacks", map[string]any{"title": "Talk to a person", "payload": "HUMAN"})
	owner := f.bot.waitEvent(t, "postback", ofKind("postback", f.psid))
	if owner.Channel != "messaging" || owner.Obj("postback")["payload"] != "HUMAN" || owner.Obj("postback")["title"] != "Talk to a person" {
		t.Errorf("owner postback on %s = %v, want messaging with title and payload (§5.3, §6)", owner.Channel, owner.Obj("postback"))
	}
	if _, ok := owner.Obj("postback")["mid"].(string); !ok {
		t.Errorf("postback lacks a mid (§5.3)")
	}
	sb := f.baton.waitEvent(t, "postback", ofKind("postback", f.psid))
	if sb.Channel != "standby" || sb.Obj("postback")["title"] != "Talk to a person" {
		t.Errorf("non-owner postback on %s = %v, want standby with the title (§5.3)", sb.Channel, sb.Obj("postback"))
	}
	if _, has := sb.Obj("postback")["payload"]; has {
		t.Errorf("standby postback carries payload %v; it must not (§5.3, §15)", sb.Obj("postback")["payload"])
	}
}

func TestConformanceRetriesIdenticalBytes(t *testing.T) {
	f := newFixture(t, "", false)
	// app_roles must be through first: a failing app_roles would hold the queue.
	f.bot.waitEvent(t, "app_roles", func(ev hookEvent) bool { return ev.Kind() == "app_roles" })
	f.bot.setFailing(true)
	mid := f.say(f.psid, "retry me")

	withMid := func() []hookPost {
		var out []hookPost
		for _, p := range f.bot.postsCopy() {
			if strings.Contains(string(p.Body), mid) {
				out = append(out, p)
			}
		}
		return out
	}
	waitFor(t, "the immediate retry", func() bool { return len(withMid()) >= 2 })
	ps := withMid()
	if len(ps) != 2 {
		t.Fatalf("before the clock moves, got %d attempts, want 2 (one retry at once, §4.4)", len(ps))
	}
	for _, h := range []string{"X-Hub-Signature-256", "X-Hub-Signature", "Content-Type"} {
		if ps[0].Header.Get(h) != ps[1].Header.Get(h) {
			t.Errorf("retry header %s differs: %q vs %q (§4.4)", h, ps[0].Header.Get(h), ps[1].Header.Get(h))
		}
	}
	if string(ps[0].Body) != string(ps[1].Body) {
		t.Errorf("retry body differs (§4.4):\n%s\n%s", ps[0].Body, ps[1].Body)
	}

	logFor := func() []delivery {
		var out []delivery
		for _, d := range f.deliveries(botID) {
			if strings.Contains(d.Body, mid) {
				out = append(out, d)
			}
		}
		return out
	}
	waitFor(t, "two logged attempts", func() bool { return len(logFor()) >= 2 })

	f.bot.setFailing(false)
	f.advance(20 * time.Second)
	waitFor(t, "the retry 20 s later", func() bool { return len(withMid()) >= 3 })
	ps = withMid()
	if string(ps[2].Body) != string(ps[0].Body) || ps[2].Header.Get("X-Hub-Signature-256") != ps[0].Header.Get("X-Hub-Signature-256") {
		t.Errorf("the 20 s retry is not byte-identical (§4.4)")
	}

	waitFor(t, "three logged attempts", func() bool { return len(logFor()) >= 3 })
	log := logFor()
	wantStatus := []int64{500, 500, 200}
	for i, d := range log[:3] {
		if d.Status != wantStatus[i] {
			t.Errorf("delivery log attempt %d: status %d, want %d", i, d.Status, wantStatus[i])
		}
		if i > 0 && d.Attempt != log[i-1].Attempt+1 {
			t.Errorf("delivery log attempts %d then %d, want consecutive numbers", log[i-1].Attempt, d.Attempt)
		}
		if d.AppID != botID {
			t.Errorf("delivery log app_id %q, want %q", d.AppID, botID)
		}
		if d.Body != string(ps[0].Body) {
			t.Errorf("delivery log body differs from the bytes sent")
		}
		for _, k := range []string{"at", "latency_ms"} {
			if _, ok := d.Raw[k].(json.Number); !ok {
				t.Errorf("delivery log %s = %#v, want a number (SPEC shapes)", k, d.Raw[k])
			}
		}
	}
	if log[0].Attempt != 0 && log[0].Attempt != 1 {
		t.Errorf("first attempt numbered %d, want 0 or 1", log[0].Attempt)
	}
}

func TestConformanceRoutingStateMachine(t *testing.T) {
	f := newFixture(t, "routing", false)
	f.bot.waitMid(t, f.say(f.psid, "hello"))

	// Pass bot → Baton: Baton gets the pass with both numeric ids; the bot nothing.
	const meta = `{"reason":"asked_for_human","team":"billing"}`
	marks := f.marks()
	requireSuccessTrue(t, f.pass(botID, f.psid, batonID, meta), "pass to Baton")
	ev := f.baton.waitEvent(t, "pass", ofKind("pass_thread_control", f.psid))
	p := ev.Obj("pass_thread_control")
	if ev.Channel != "messaging" || !isNumber(p["previous_owner_app_id"], botID) || !isNumber(p["new_owner_app_id"], batonID) || p["metadata"] != meta {
		t.Errorf("pass event on %s = %v, want messaging, numeric previous %s and new %s, metadata (§5.5)", ev.Channel, p, botID, batonID)
	}
	checkWrapper(t, ev, f.psid, ms(baseTime))
	if kinds := f.barrier(marks)[f.bot]; slices.Contains(kinds, "pass_thread_control") {
		t.Errorf("routing: the previous owner got a pass event; only the new owner does (§6)")
	}
	for _, who := range []string{botID, batonID} {
		if owner := f.threadOwner(who, f.psid); owner != batonID {
			t.Errorf("thread_owner as %s = %q, want %s", who, owner, batonID)
		}
	}

	// Take: Baton gets it with both ids and the metadata.
	marks = f.marks()
	requireSuccessTrue(t, f.take(botID, f.psid, "agent idle for 30 min"), "take")
	ev = f.baton.waitEvent(t, "take", ofKind("take_thread_control", f.psid))
	tk := ev.Obj("take_thread_control")
	if ev.Channel != "messaging" || !isNumber(tk["previous_owner_app_id"], batonID) || !isNumber(tk["new_owner_app_id"], botID) || tk["metadata"] != "agent idle for 30 min" {
		t.Errorf("take event on %s = %v, want messaging, numeric previous %s and new %s, metadata (§5.6)", ev.Channel, tk, batonID, botID)
	}
	if kinds := f.barrier(marks)[f.bot]; slices.Contains(kinds, "take_thread_control") {
		t.Errorf("routing: the taker got a take event; only the previous owner does (§6)")
	}

	// Pass without metadata: no metadata key.
	mark := f.baton.mark()
	requireSuccessTrue(t, f.pass(botID, f.psid, batonID, ""), "pass without metadata")
	ev = f.baton.waitEventSince(t, mark, "second pass", ofKind("pass_thread_control", f.psid))
	if _, has := ev.Obj("pass_thread_control")["metadata"]; has {
		t.Errorf("pass without metadata carries %v; the key must be absent (§5.5 emit)", ev.Obj("pass_thread_control")["metadata"])
	}

	// Request by a non-owner reaches the Primary.
	mark = f.baton.mark()
	requireSuccess(t, f.take(botID, f.psid, ""), "take back")
	ev = f.baton.waitEventSince(t, mark, "second take", ofKind("take_thread_control", f.psid))
	if _, has := ev.Obj("take_thread_control")["metadata"]; has {
		t.Errorf("take without metadata carries %v; the key must be absent (§5.6 emit as §5.5)", ev.Obj("take_thread_control")["metadata"])
	}
	requireSuccessTrue(t, f.post(batonID, "request_thread_control", map[string]any{
		"recipient": map[string]any{"id": f.psid}, "metadata": "VIP",
	}), "request")
	ev = f.bot.waitEvent(t, "request", ofKind("request_thread_control", f.psid))
	rq := ev.Obj("request_thread_control")
	if ev.Channel != "messaging" || !isNumber(rq["requested_owner_app_id"], batonID) || rq["metadata"] != "VIP" {
		t.Errorf("request event on %s = %v, want messaging, numeric requested_owner_app_id %s (§5.7)", ev.Channel, rq, batonID)
	}

	// Release by the owner: idle, and nobody hears of it.
	marks = f.marks()
	requireSuccessTrue(t, f.post(botID, "release_thread_control", map[string]any{"recipient": map[string]any{"id": f.psid}}), "release")
	if owner := f.threadOwner(botID, f.psid); owner != "" {
		t.Errorf("after release, thread_owner = %q, want {\"data\":[]} (§8.6, §8.7)", owner)
	}
	// Pass from idle: previous_owner_app_id is present and null.
	requireSuccessTrue(t, f.pass(botID, f.psid, batonID, "from idle"), "pass from idle")
	ev = f.baton.waitEvent(t, "pass from idle", func(ev hookEvent) bool {
		return ofKind("pass_thread_control", f.psid)(ev) && ev.Obj("pass_thread_control")["metadata"] == "from idle"
	})
	if v, has := ev.Obj("pass_thread_control")["previous_owner_app_id"]; !has || v != nil {
		t.Errorf("pass from idle: previous_owner_app_id = %#v (present %v), want null (§5.5, §7)", v, has)
	}
	for r, kinds := range f.barrier(marks) {
		for _, k := range kinds {
			if k != "pass_thread_control" && k != "message" && k != "echo" && k != "delivery" {
				t.Errorf("app %s got %s around a release; release is silent (§6)", r.appID, k)
			}
		}
		if r == f.bot && slices.Contains(kinds, "pass_thread_control") {
			t.Errorf("bot got a pass event for its own release or pass")
		}
	}

	// Extend: owner only, duration ≤ 604800 s.
	requireSuccessTrue(t, f.post(batonID, "extend_thread_control", map[string]any{"recipient": map[string]any{"id": f.psid}, "duration": 604800}), "extend 7 d")
	checkGraphError(t, f.post(batonID, "extend_thread_control", map[string]any{"recipient": map[string]any{"id": f.psid}, "duration": 604801}),
		"extend 604801 s", wantErr{Status: 400, Code: 100, Subcode: -1, Prefix: "(#100) "})
	if g := f.post(botID, "extend_thread_control", map[string]any{"recipient": map[string]any{"id": f.psid}, "duration": 3600}); g.Body["error"] == nil {
		t.Errorf("extend by a non-owner succeeded: %s (§8.6 owner only)", g.Raw)
	}
	// Release by a non-owner.
	checkGraphError(t, f.post(botID, "release_thread_control", map[string]any{"recipient": map[string]any{"id": f.psid}}),
		"release by a non-owner", wantErr{Status: 400, Code: 100, Subcode: 2534037, Prefix: "(#100) The action is invalid since it's not the thread owner."})
}

func TestConformanceInactivityExpiry(t *testing.T) {
	t.Run("24h", func(t *testing.T) {
		f := newFixture(t, "routing", false)
		f.bot.waitMid(t, f.say(f.psid, "hello"))
		f.advance(23 * time.Hour)
		if owner := f.threadOwner(botID, f.psid); owner != botID {
			t.Errorf("after 23 h owner = %q, want still %s", owner, botID)
		}
		marks := f.marks()
		f.advance(time.Hour + time.Second)
		if owner := f.threadOwner(botID, f.psid); owner != "" {
			t.Errorf("after 24 h without a user message owner = %q, want idle (§7)", owner)
		}
		for r, kinds := range f.barrier(marks) {
			if len(kinds) != 0 {
				t.Errorf("app %s got %v on expiry; expiry is silent (§6)", r.appID, kinds)
			}
		}
	})
	t.Run("extended", func(t *testing.T) {
		f := newFixture(t, "routing", false)
		f.bot.waitMid(t, f.say(f.psid, "hello"))
		requireSuccessTrue(t, f.post(botID, "extend_thread_control", map[string]any{"recipient": map[string]any{"id": f.psid}, "duration": 172800}), "extend 2 d")
		f.advance(25 * time.Hour)
		if owner := f.threadOwner(botID, f.psid); owner != botID {
			t.Errorf("25 h into a 2-day extension owner = %q, want %s (§7 extend)", owner, botID)
		}
		f.advance(24 * time.Hour)
		if owner := f.threadOwner(botID, f.psid); owner != "" {
			t.Errorf("after the extension ran out owner = %q, want idle (§7)", owner)
		}
	})
}

func TestConformanceGraphErrors(t *testing.T) {
	f := newFixture(t, "routing", false)
	f.bot.waitMid(t, f.say(f.psid, "hello"))
	const rolelessID = "4500000004"
	f.addApp(app{ID: rolelessID, Name: "Roleless", Role: "none"})
	text := func(psid string) map[string]any {
		return map[string]any{"recipient": map[string]any{"id": psid}, "messaging_type": "RESPONSE", "message": map[string]any{"text": "x"}}
	}
	with := func(key string, v any) map[string]any {
		b := text(f.psid)
		b[key] = v
		return b
	}
	invalid := wantErr{Status: 400, Code: 100, Subcode: -1, Prefix: "(#100) "}
	tests := []struct {
		name string
		call func() graphResp
		want wantErr
	}{
		{"bad token", func() graphResp {
			return f.graphDo(graphCall{Path: graphV + "/me/messages", Token: "not-a-token", JSON: text(f.psid)})
		}, wantErr{Status: 400, Code: 190, Subcode: -1, Prefix: "Invalid OAuth access token"}},
		{"unknown PSID", func() graphResp { return f.post(botID, "messages", text("999999999999")) },
			wantErr{Status: 400, Code: 100, Subcode: 2018001, Prefix: "(#100) No matching user found"}},
		{"message and sender_action", func() graphResp {
			b := text(f.psid)
			b["sender_action"] = "typing_on"
			return f.post(botID, "messages", b)
		}, wantErr{Status: 400, Code: 100, Subcode: 2018014, Prefix: "(#100) Cannot send both message and state at the same time."}},
		{"non-owner send", func() graphResp { return f.post(batonID, "messages", text(f.psid)) },
			wantErr{Status: 400, Code: 10, Subcode: 2018300, Prefix: "(#10) Message failed to send because another app is controlling this thread now."}},
		{"pass by non-owner", func() graphResp { return f.pass(batonID, f.psid, botID, "") },
			wantErr{Status: 400, Code: 100, Subcode: 2534037, Prefix: "(#100) The action is invalid since it's not the thread owner."}},
		{"take by a Secondary", func() graphResp { return f.take(batonID, f.psid, "") },
			wantErr{Status: 400, Code: 10, Subcode: -1, Prefix: "(#10) "}},
		{"secondary_receivers by a Secondary", func() graphResp {
			return f.get(batonID, graphV+"/me/secondary_receivers", url.Values{"fields": {"id,name"}})
		}, wantErr{Status: 400, Code: 10, Subcode: -1, Prefix: "(#10) "}},
		{"wrong appsecret_proof", func() graphResp {
			return f.graphDo(graphCall{Path: graphV + "/me/messages", Token: f.token(botID), JSON: text(f.psid),
				Query: url.Values{"appsecret_proof": {proof("wrong-secret", f.token(botID))}}})
		}, wantErr{Status: 400, Code: 100, Subcode: -1, Contain: "Invalid appsecret_proof provided in the API argument"}},
		{"/me without a token", func() graphResp {
			return f.graphDo(graphCall{Path: graphV + "/me/messages", JSON: text(f.psid)})
		}, wantErr{Status: 400, Code: 2500, Subcode: -1, Contain: "An active access token must be used"}},
		{"unknown path", func() graphResp {
			return f.graphDo(graphCall{Method: http.MethodPost, Path: graphV + "/me/no_such_edge", Token: f.token(botID), JSON: text(f.psid)})
		}, wantErr{Status: 400, Code: 2500, Subcode: -1, Contain: "Unknown path components: /"}},
		{"send by an app without a role", func() graphResp { return f.post(rolelessID, "messages", text(f.psid)) },
			wantErr{Status: 400, Code: 10, Subcode: 2018171, Prefix: "(#10) Only available to Primary and Secondary Receivers."}},
		{"pass by an app without a role", func() graphResp { return f.pass(rolelessID, f.psid, botID, "") },
			wantErr{Status: 400, Code: 10, Subcode: 2018171, Prefix: "(#10) "}},
		{"pass to a target without a role", func() graphResp { return f.pass(botID, f.psid, rolelessID, "") }, invalid},
		{"pass to the caller", func() graphResp { return f.pass(botID, f.psid, botID, "") }, invalid},
		{"Primary pass without target", func() graphResp { return f.pass(botID, f.psid, "", "") }, invalid},
		{"request by the Primary", func() graphResp {
			return f.post(botID, "request_thread_control", map[string]any{"recipient": map[string]any{"id": f.psid}})
		}, wantErr{Status: 400, Code: 10, Subcode: -1, Prefix: "(#10) "}},
		{"text over 2000 characters", func() graphResp {
			return f.post(botID, "messages", with("message", map[string]any{"text": strings.Repeat("a", 2001)}))
		}, invalid},
		{"retired tag", func() graphResp {
			b := with("messaging_type", "MESSAGE_TAG")
			b["tag"] = "ACCOUNT_UPDATE"
			return f.post(botID, "messages", b)
		}, invalid},
		{"MESSAGE_TAG without tag", func() graphResp { return f.post(botID, "messages", with("messaging_type", "MESSAGE_TAG")) }, invalid},
		{"user_ref recipient", func() graphResp {
			return f.post(botID, "messages", with("recipient", map[string]any{"user_ref": "abc"}))
		}, invalid},
		{"metadata of 1000 characters", func() graphResp {
			return f.post(botID, "messages", with("message", map[string]any{"text": "x", "metadata": strings.Repeat("m", 1000)}))
		}, invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGraphError(t, tc.call(), tc.name, tc.want)
		})
	}
}

func TestConformanceMessagingWindow(t *testing.T) {
	f := newFixture(t, "routing", false)
	f.bot.waitMid(t, f.say(f.psid, "hello"))
	send := func(appID string, tagged bool) graphResp {
		b := map[string]any{"recipient": map[string]any{"id": f.psid}, "messaging_type": "RESPONSE", "message": map[string]any{"text": "later"}}
		if tagged {
			b["messaging_type"], b["tag"] = "MESSAGE_TAG", "HUMAN_AGENT"
		}
		return f.post(appID, "messages", b)
	}
	f.advance(25 * time.Hour) // the thread is idle now, so any app with a role may send (§2)
	checkGraphError(t, send(botID, false), "RESPONSE after 25 h", wantErr{Status: 400, Code: 10, Subcode: 2018278,
		Prefix: "(#10) This message is sent outside of allowed window."})
	requireSuccess(t, send(batonID, true), "HUMAN_AGENT after 25 h by an app with human_agent")
	if g := send(botID, true); g.Body["error"] == nil {
		t.Errorf("HUMAN_AGENT by an app without the flag succeeded: %s (§11)", g.Raw)
	} else {
		checkGraphError(t, g, "HUMAN_AGENT without the flag", wantErr{Status: 400, Code: 10, Subcode: -1, Prefix: "(#10) "})
	}
	f.advance(6 * 24 * time.Hour) // 7 d 1 h since the person wrote
	checkGraphError(t, send(batonID, true), "HUMAN_AGENT after 7 d", wantErr{Status: 400, Code: 10, Subcode: 2018278,
		Prefix: "(#10) This message is sent outside of allowed window."})
	// A new user message reopens the window.
	f.say(f.psid, "back again")
	requireSuccess(t, send(botID, false), "RESPONSE after the person wrote again")
}

func TestConformanceThreadOwnerVisibility(t *testing.T) {
	f := newFixture(t, "routing", true)
	if g := f.get(batonID, graphV+"/me/thread_owner", url.Values{"recipient": {f.psid}}); string(bytes.TrimSpace(g.Raw)) != `{"data":[]}` {
		t.Errorf("idle thread_owner raw = %s, want {\"data\":[]} (§8.7)", g.Raw)
	}
	f.bot.waitMid(t, f.say(f.psid, "hello"))
	if owner := f.threadOwner(batonID, f.psid); owner != botID {
		t.Errorf("Secondary sees owner %q, want the Primary %s (§8.7)", owner, botID)
	}
	requireSuccessTrue(t, f.pass(botID, f.psid, otherID, ""), "pass to the other Secondary")
	checkGraphError(t, f.get(batonID, graphV+"/me/thread_owner", url.Values{"recipient": {f.psid}}), "thread_owner hidden",
		wantErr{Status: 400, Code: 100, Subcode: 2018234, Prefix: "(#100) Denying visibility of any secondary receiver to another secondary receiver other than itself."})
	if owner := f.threadOwner(botID, f.psid); owner != otherID {
		t.Errorf("Primary sees owner %q, want %s", owner, otherID)
	}
	if owner := f.threadOwner(otherID, f.psid); owner != otherID {
		t.Errorf("owner sees itself as %q, want %s", owner, otherID)
	}
}

func TestConformanceSecondaryReceiversAndProfile(t *testing.T) {
	e := newEnv(t, "")
	e.addApp(app{ID: botID, Name: "Demo Bot", Role: "primary_receiver"})
	e.addApp(app{ID: batonID, Name: "Baton", Role: "secondary_receiver"})

	g := e.get(botID, graphV+"/me/secondary_receivers", url.Values{"fields": {"id,name"}})
	requireSuccess(t, g, "secondary_receivers")
	found := false
	for _, it := range g.Body["data"].([]any) {
		m, _ := it.(map[string]any)
		if m["id"] == batonID {
			found = true
			if m["name"] != "Baton" {
				t.Errorf("secondary_receivers name = %v, want Baton", m["name"])
			}
		}
		if m["id"] == botID {
			t.Errorf("secondary_receivers lists the Primary")
		}
	}
	if !found {
		t.Errorf("secondary_receivers = %s, want {\"id\":%q,…} with a string id (§8.8)", g.Raw, batonID)
	}
	g = e.get(botID, "/me/secondary_receivers", nil)
	requireSuccess(t, g, "secondary_receivers without fields")
	for _, it := range g.Body["data"].([]any) {
		if m, _ := it.(map[string]any); len(m) != 1 || m["id"] == nil {
			t.Errorf("without fields only id is returned, got %v (§8.8)", m)
		}
	}

	out := e.controlOK(http.MethodPost, "/_emulator/users", map[string]any{"first_name": "Zoë", "last_name": "Chang", "profile_pic": "http://127.0.0.1:8081/pic/z.jpg"})
	psid := out["psid"].(string)
	for _, path := range []string{graphV + "/" + psid, "/" + psid} {
		p := e.get(batonID, path, url.Values{"fields": {"first_name,last_name,profile_pic"}})
		requireSuccess(t, p, "user profile "+path)
		if p.Body["first_name"] != "Zoë" || p.Body["last_name"] != "Chang" || p.Body["id"] != psid {
			t.Errorf("profile = %s, want Zoë Chang id %s (§8.9)", p.Raw, psid)
		}
		if pic, _ := p.Body["profile_pic"].(string); pic == "" {
			t.Errorf("profile_pic missing: %s", p.Raw)
		}
		if !strings.Contains(string(p.Raw), `Zo\u00eb`) {
			t.Errorf("profile raw = %s, want Meta escaping Zo\\u00eb (§8.0)", p.Raw)
		}
	}
}

func TestConformanceGraphRequestForms(t *testing.T) {
	f := newFixture(t, "", false)
	f.bot.waitMid(t, f.say(f.psid, "hello"))
	tok := f.token(botID)
	body := func(text string) map[string]any {
		return map[string]any{"recipient": map[string]any{"id": f.psid}, "messaging_type": "RESPONSE", "message": map[string]any{"text": text}}
	}
	form := func(text string) url.Values {
		return url.Values{
			"recipient":      {`{"id":"` + f.psid + `"}`},
			"messaging_type": {"RESPONSE"},
			"message":        {`{"text":"` + text + `"}`},
		}
	}
	tests := []struct {
		name string
		call graphCall
	}{
		{"no version, /me", graphCall{Path: "/me/messages", Token: tok, JSON: body("a")}},
		{"v25.0, /me", graphCall{Path: "/v25.0/me/messages", Token: tok, JSON: body("b")}},
		{"v2.6, /me", graphCall{Path: "/v2.6/me/messages", Token: tok, JSON: body("c")}},
		{"v25.0, page id", graphCall{Path: "/v25.0/" + pageID + "/messages", Token: tok, JSON: body("d")}},
		{"no version, page id", graphCall{Path: "/" + pageID + "/messages", Token: tok, JSON: body("e")}},
		{"bearer token", graphCall{Path: graphV + "/me/messages", Token: tok, Place: inBearer, JSON: body("f")}},
		{"form body, token in form", graphCall{Path: graphV + "/me/messages", Token: tok, Place: inForm, Form: form("g")}},
		{"form body, token in query", graphCall{Path: graphV + "/me/messages", Token: tok, Form: form("h")}},
		{"query only", graphCall{Path: graphV + "/me/messages", Token: tok, Query: form("j")}},
		{"lax JSON in form values", graphCall{Path: graphV + "/me/messages", Token: tok, Form: url.Values{
			"recipient": {"{id:" + f.psid + "}"}, "messaging_type": {"RESPONSE"}, "message": {"{text:'k'}"},
		}}},
		{"right appsecret_proof", graphCall{Path: graphV + "/me/messages", Token: tok, JSON: body("i"),
			Query: url.Values{"appsecret_proof": {proof(f.secrets[botID], tok)}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := f.graphDo(tc.call)
			requireSuccess(t, g, tc.name)
			id, _ := g.Body["message_id"].(string)
			if !midRe.MatchString(id) {
				t.Fatalf("message_id = %q", id)
			}
			ev := f.bot.waitMid(t, id)
			if !isNumber(ev.Obj("message")["app_id"], botID) {
				t.Errorf("echo app_id = %#v, want %s: the token names the app", ev.Obj("message")["app_id"], botID)
			}
		})
	}
}

func TestConformanceGraphDown(t *testing.T) {
	f := newFixture(t, "", false)
	f.bot.waitMid(t, f.say(f.psid, "hello"))
	f.faults(map[string]any{"graph_down": true})
	g := f.post(botID, "messages", map[string]any{"recipient": map[string]any{"id": f.psid}, "messaging_type": "RESPONSE", "message": map[string]any{"text": "x"}})
	checkGraphError(t, g, "graph_down send", wantErr{Status: 503, Code: 2, Subcode: -1, Contain: "An unexpected error has occurred. Please retry your request later."})
	if e, _ := g.Body["error"].(map[string]any); e == nil || e["is_transient"] != true {
		t.Errorf("graph_down: is_transient must be true (§9.1); body %s", g.Raw)
	}
	checkGraphError(t, f.get(botID, graphV+"/me/thread_owner", url.Values{"recipient": {f.psid}}), "graph_down thread_owner",
		wantErr{Status: 503, Code: 2, Subcode: -1})
	f.faults(map[string]any{"graph_down": false})
	f.sendText(botID, f.psid, "back up", "")
}

func TestConformanceWebhookFaults(t *testing.T) {
	t.Run("duplicate", func(t *testing.T) {
		f := newFixture(t, "", false)
		f.bot.waitEvent(t, "app_roles", func(ev hookEvent) bool { return ev.Kind() == "app_roles" })
		f.faults(map[string]any{"webhook_duplicate_rate": 1.0})
		mid := f.say(f.psid, "twice")
		var copies []hookPost
		waitFor(t, "a duplicate POST", func() bool {
			copies = copies[:0]
			for _, p := range f.bot.postsCopy() {
				if strings.Contains(string(p.Body), mid) {
					copies = append(copies, p)
				}
			}
			return len(copies) >= 2
		})
		if string(copies[0].Body) != string(copies[1].Body) || copies[0].Header.Get("X-Hub-Signature-256") != copies[1].Header.Get("X-Hub-Signature-256") {
			t.Errorf("duplicate is not identical (§4.4):\n%s\n%s", copies[0].Body, copies[1].Body)
		}
	})
	t.Run("drop", func(t *testing.T) {
		f := newFixture(t, "", false)
		f.bot.waitEvent(t, "app_roles", func(ev hookEvent) bool { return ev.Kind() == "app_roles" })
		f.faults(map[string]any{"webhook_drop_rate": 1.0})
		lost := f.say(f.psid, "lost")
		waitFor(t, "the dropped delivery in the log", func() bool {
			for _, d := range f.deliveries(botID) {
				if strings.Contains(d.Body, lost) {
					return true
				}
			}
			return false
		})
		f.faults(map[string]any{"webhook_drop_rate": 0.0})
		kept := f.say(f.psid, "kept")
		f.bot.waitMid(t, kept)
		if got := f.bot.find(func(ev hookEvent) bool { return msgMid(ev) == lost }); len(got) != 0 {
			t.Errorf("a dropped delivery arrived anyway (§4.4 drop_rate)")
		}
	})
}

func TestConformanceBatchingFromQueue(t *testing.T) {
	f := newFixture(t, "", false)
	f.bot.waitEvent(t, "app_roles", func(ev hookEvent) bool { return ev.Kind() == "app_roles" })
	f.bot.holdPosts()
	first := f.say(f.psid, "one")
	waitFor(t, "the first POST to be in flight", func() bool { return f.bot.inFlightNow() == 1 })
	queued := []string{f.say(f.psid, "two"), f.say(f.psid, "three"), f.say(f.psid, "four")}
	f.bot.release()
	f.bot.waitMid(t, first)
	posts := map[int]bool{}
	for _, mid := range queued {
		posts[f.bot.waitMid(t, mid).Post] = true
	}
	if len(posts) != 1 {
		t.Errorf("events queued behind an in-flight POST arrived in %d POSTs, want one shared POST (§4.2)", len(posts))
	}
	if f.bot.waitMid(t, first).Post == f.bot.waitMid(t, queued[0]).Post {
		t.Errorf("the in-flight event shares a POST with later ones; batching happens only from the queue (§4.2)")
	}
}

func TestConformanceHandoverPerMode(t *testing.T) {
	tests := []struct {
		mode         string
		newOwner     string // owner of a thread before any message
		allHearIt    bool   // routing-cr broadcasts pass/take to every subscriber
		previousKey  bool   // pass carries previous_owner_app_id
		nonOwnerSend bool   // a non-owner may send
		hasRelease   bool
		expiration   bool // thread_owner carries expiration
	}{
		{mode: "classic", newOwner: botID, nonOwnerSend: true},
		{mode: "routing", newOwner: "", previousKey: true, hasRelease: true},
		{mode: "routing-cr", newOwner: "", allHearIt: true, previousKey: true, hasRelease: true, expiration: true},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			f := newFixture(t, tc.mode, true)
			if st := f.state(); st["mode"] != tc.mode {
				t.Errorf("state.mode = %v, want %s", st["mode"], tc.mode)
			}
			if owner := f.threadOwner(botID, f.psid); owner != tc.newOwner {
				t.Errorf("new thread owner = %q, want %q (§2)", owner, tc.newOwner)
			}
			f.bot.waitMid(t, f.say(f.psid, "hello"))
			g := f.get(botID, graphV+"/me/thread_owner", url.Values{"recipient": {f.psid}})
			requireSuccess(t, g, "thread_owner")
			to := g.Body["data"].([]any)[0].(map[string]any)["thread_owner"].(map[string]any)
			if _, has := to["expiration"].(json.Number); has != tc.expiration {
				t.Errorf("thread_owner = %s; expiration present %v, want %v (§2, §8.7)", g.Raw, has, tc.expiration)
			}

			// Non-owner send while the bot owns.
			ng := f.post(batonID, "messages", map[string]any{"recipient": map[string]any{"id": f.psid}, "messaging_type": "RESPONSE", "message": map[string]any{"text": "x"}})
			if tc.nonOwnerSend {
				requireSuccess(t, ng, "classic non-owner send")
			} else {
				checkGraphError(t, ng, "non-owner send", wantErr{Status: 400, Code: 10, Subcode: 2018300, Prefix: "(#10) Message failed to send"})
			}

			// Pass bot → Baton.
			marks := f.marks()
			requireSuccessTrue(t, f.pass(botID, f.psid, batonID, "please help"), "pass")
			ev := f.baton.waitEvent(t, "pass", ofKind("pass_thread_control", f.psid))
			p := ev.Obj("pass_thread_control")
			if !isNumber(p["new_owner_app_id"], batonID) || p["metadata"] != "please help" {
				t.Errorf("pass = %v, want numeric new_owner_app_id %s and metadata (§5.5)", p, batonID)
			}
			prev, has := p["previous_owner_app_id"]
			if tc.previousKey && !isNumber(prev, botID) {
				t.Errorf("pass previous_owner_app_id = %#v, want the number %s (§5.5)", prev, botID)
			}
			if !tc.previousKey && has {
				t.Errorf("classic pass carries previous_owner_app_id %v (§5.5 emit)", prev)
			}
			checkRecipients(t, f, marks, "pass_thread_control", map[*receiver]bool{f.bot: tc.allHearIt, f.baton: true, f.other: tc.allHearIt})

			// Take back.
			marks = f.marks()
			requireSuccessTrue(t, f.take(botID, f.psid, "back to bot"), "take")
			ev = f.baton.waitEvent(t, "take", ofKind("take_thread_control", f.psid))
			tk := ev.Obj("take_thread_control")
			if tk["metadata"] != "back to bot" {
				t.Errorf("take metadata = %v (§5.6)", tk["metadata"])
			}
			for k, v := range tk {
				if strings.HasSuffix(k, "_app_id") && v != nil {
					if _, ok := v.(json.Number); !ok {
						t.Errorf("take %s = %#v, want a number (§1)", k, v)
					}
				}
			}
			if tc.previousKey && (!isNumber(tk["previous_owner_app_id"], batonID) || !isNumber(tk["new_owner_app_id"], botID)) {
				t.Errorf("take = %v, want numeric previous %s and new %s (§5.6)", tk, batonID, botID)
			}
			checkRecipients(t, f, marks, "take_thread_control", map[*receiver]bool{f.bot: tc.allHearIt, f.baton: true, f.other: tc.allHearIt})

			extend := f.post(botID, "extend_thread_control", map[string]any{"recipient": map[string]any{"id": f.psid}, "duration": 3600})
			release := f.post(botID, "release_thread_control", map[string]any{"recipient": map[string]any{"id": f.psid}})
			if !tc.hasRelease {
				checkGraphError(t, extend, "classic extend", wantErr{Status: 400, Code: 2500, Subcode: -1, Contain: "Unknown path components: /"})
				checkGraphError(t, release, "classic release", wantErr{Status: 400, Code: 2500, Subcode: -1, Contain: "Unknown path components: /"})
				return
			}
			requireSuccessTrue(t, extend, "extend")
			requireSuccessTrue(t, release, "release")

			// While idle: routing lets any app with a role send, routing-cr only the Primary.
			idle := f.post(batonID, "messages", map[string]any{"recipient": map[string]any{"id": f.psid}, "messaging_type": "RESPONSE", "message": map[string]any{"text": "idle send"}})
			if tc.allHearIt {
				checkGraphError(t, idle, "routing-cr idle send by a Secondary", wantErr{Status: 400, Code: 10, Subcode: 2018300, Prefix: "(#10) Message failed to send"})
			} else {
				requireSuccess(t, idle, "routing idle send by a Secondary")
			}

			// Take from idle: silent in routing; routing-cr sends it, previous null, to everyone.
			marks = f.marks()
			requireSuccessTrue(t, f.take(botID, f.psid, "idle take"), "take from idle")
			if tc.allHearIt {
				ev := f.baton.waitEvent(t, "take from idle", func(ev hookEvent) bool {
					return ofKind("take_thread_control", f.psid)(ev) && ev.Obj("take_thread_control")["metadata"] == "idle take"
				})
				if v, has := ev.Obj("take_thread_control")["previous_owner_app_id"]; !has || v != nil {
					t.Errorf("routing-cr take from idle: previous_owner_app_id = %#v (present %v), want null (§7)", v, has)
				}
			}
			checkRecipients(t, f, marks, "take_thread_control", map[*receiver]bool{f.bot: tc.allHearIt, f.baton: tc.allHearIt, f.other: tc.allHearIt})
			if owner := f.threadOwner(botID, f.psid); owner != botID {
				t.Errorf("after a take from idle owner = %q, want %s (§7)", owner, botID)
			}
		})
	}
}

// checkRecipients proves, with a barrier, exactly which apps heard a handover event.
func checkRecipients(t *testing.T, f *fixture, marks map[*receiver]int, kind string, want map[*receiver]bool) {
	t.Helper()
	got := f.barrier(marks)
	for r, w := range want {
		if slices.Contains(got[r], kind) != w {
			t.Errorf("%s: app %s heard it = %v, want %v (§6 recipients); kinds %v", kind, r.appID, !w, w, got[r])
		}
	}
}

// ensurePageInbox gives the Page Inbox (PROTOCOL.md §12) the Secondary role.
// The control API names no switch for it, so the suite uses the Inbox if
// the emulator lists it already and registers it as an app otherwise.
func ensurePageInbox(t *testing.T, e *env) {
	t.Helper()
	for _, a := range e.state()["apps"].([]any) {
		if m, _ := a.(map[string]any); m["id"] == pageInboxID {
			if m["role"] != "secondary_receiver" {
				t.Fatalf("Page Inbox listed with role %v, want secondary_receiver", m["role"])
			}
			return
		}
	}
	status, raw := e.control(http.MethodPost, "/_emulator/apps", map[string]any{
		"id": pageInboxID, "name": "Page Inbox", "secret": "inbox-secret", "verify_token": "inbox-verify",
		"webhook_url": "", "role": "secondary_receiver", "human_agent": true,
	})
	if status != http.StatusOK {
		t.Fatalf("registering the Page Inbox as an app: status %d %s", status, raw)
	}
}

func TestConformancePageInbox(t *testing.T) {
	for _, mode := range []string{"classic", "routing"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, mode, false)
			ensurePageInbox(t, f.env)
			f.bot.waitMid(t, f.say(f.psid, "hello"))
			requireSuccessTrue(t, f.pass(botID, f.psid, pageInboxID, "to the inbox"), "pass to the Page Inbox")
			if owner := f.threadOwner(botID, f.psid); owner != pageInboxID {
				t.Errorf("owner after pass to the Inbox = %q, want %s", owner, pageInboxID)
			}
			checkGraphError(t, f.get(batonID, graphV+"/me/thread_owner", url.Values{"recipient": {f.psid}}), "Inbox-owned thread_owner for Baton",
				wantErr{Status: 400, Code: 100, Subcode: 2018234, Prefix: "(#100) Denying visibility"})

			mark := f.bot.mark()
			f.controlOK(http.MethodPost, "/_emulator/page-inbox/"+f.psid+"/done", map[string]any{})
			ev := f.bot.waitEventSince(t, mark, "the Inbox's Done pass", ofKind("pass_thread_control", f.psid))
			p := ev.Obj("pass_thread_control")
			if ev.Channel != "messaging" || !isNumber(p["new_owner_app_id"], botID) || p["metadata"] != "Pass thread control from Page Inbox" {
				t.Errorf("Done pass on %s = %v, want messaging, new_owner_app_id %s, metadata \"Pass thread control from Page Inbox\" (§12)", ev.Channel, p, botID)
			}
			prev, has := p["previous_owner_app_id"]
			if mode == "classic" && has {
				t.Errorf("classic Done pass carries previous_owner_app_id %v (§5.5)", prev)
			}
			if mode != "classic" && !isNumber(prev, pageInboxID) {
				t.Errorf("Done pass previous_owner_app_id = %#v, want the number %s (§12)", prev, pageInboxID)
			}
			if owner := f.threadOwner(botID, f.psid); owner != botID {
				t.Errorf("owner after Done = %q, want %s", owner, botID)
			}

			mark = f.bot.mark()
			f.controlOK(http.MethodPost, "/_emulator/page-inbox/"+f.psid+"/request", map[string]any{})
			ev = f.bot.waitEventSince(t, mark, "the Inbox's request", ofKind("request_thread_control", f.psid))
			rq := ev.Obj("request_thread_control")
			if !isNumber(rq["requested_owner_app_id"], pageInboxID) {
				t.Errorf("Move to Inbox request = %v, want requested_owner_app_id the number %s (§12)", rq, pageInboxID)
			}
			if _, has := rq["metadata"]; has {
				t.Errorf("Move to Inbox request carries metadata %v; it has none (§12)", rq["metadata"])
			}
			if owner := f.threadOwner(botID, f.psid); owner != botID {
				t.Errorf("a request changes nothing by itself; owner = %q, want %s (§8.5)", owner, botID)
			}
		})
	}
}

func TestConformanceSecondaryPassDefaultsToPrimary(t *testing.T) {
	f := newFixture(t, "", false)
	f.bot.waitMid(t, f.say(f.psid, "hello"))
	// target_app_id may be a digit string as well as a number (§8.3).
	requireSuccessTrue(t, f.post(botID, "pass_thread_control", map[string]any{
		"recipient": map[string]any{"id": f.psid}, "target_app_id": batonID,
	}), "pass with a string target_app_id")
	if owner := f.threadOwner(botID, f.psid); owner != batonID {
		t.Fatalf("owner = %q, want %s", owner, batonID)
	}
	// Baton's echo: messaging for Baton (the owner), standby for the bot (§13.4, §6).
	sent := f.sendText(batonID, f.psid, "Hi, Ana here", "baton:7f3c9e2a")
	for r, ch := range map[*receiver]string{f.baton: "messaging", f.bot: "standby"} {
		ev := r.waitMid(t, sent)
		if ev.Kind() != "echo" || ev.Channel != ch || !isNumber(ev.Obj("message")["app_id"], batonID) || ev.Obj("message")["metadata"] != "baton:7f3c9e2a" {
			t.Errorf("app %s: %s on %s = %v, want an echo on %s with app_id %s and the metadata", r.appID, ev.Kind(), ev.Channel, ev.Obj("message"), ch, batonID)
		}
	}
	// The owner may request: success and no event (§8.5 [ED]).
	requireSuccessTrue(t, f.post(batonID, "request_thread_control", map[string]any{"recipient": map[string]any{"id": f.psid}}), "request by the owner")

	mark := f.bot.mark()
	requireSuccessTrue(t, f.pass(batonID, f.psid, "", "done"), "Secondary pass without target")
	ev := f.bot.waitEventSince(t, mark, "the pass back", ofKind("pass_thread_control", f.psid))
	if p := ev.Obj("pass_thread_control"); !isNumber(p["new_owner_app_id"], botID) || !isNumber(p["previous_owner_app_id"], batonID) {
		t.Errorf("pass back = %v, want new owner the Primary %s, previous %s (§8.3 default target)", p, botID, batonID)
	}
	for _, k := range f.bot.kindsBefore(mark, func(ev hookEvent) bool { return ev.Kind() == "pass_thread_control" }) {
		if k == "request_thread_control" {
			t.Errorf("the owner's own request reached the Primary (§8.5: no event)")
		}
	}
	if owner := f.threadOwner(batonID, f.psid); owner != botID {
		t.Errorf("owner = %q, want %s", owner, botID)
	}
}

func TestConformanceFailingAppIsUnsubscribed(t *testing.T) {
	f := newFixture(t, "", false)
	subscribed := func() any {
		for _, a := range f.state()["apps"].([]any) {
			if m, _ := a.(map[string]any); m["id"] == botID {
				return m["subscribed"]
			}
		}
		return nil
	}
	f.bot.setFailing(true)
	mid := f.say(f.psid, "into the void")
	waitFor(t, "the first attempts", func() bool {
		n := 0
		for _, p := range f.bot.postsCopy() {
			if strings.Contains(string(p.Body), mid) {
				n++
			}
		}
		return n >= 2
	})
	// Step the clock in retry-sized steps up to just past 1 h (§4.4).
	for range 10 {
		f.advance(5 * time.Minute)
	}
	if s := subscribed(); s != true {
		t.Errorf("after 50 min of failures subscribed = %v, want still true (disabled only at 1 h)", s)
	}
	for range 3 {
		f.advance(5 * time.Minute)
	}
	waitFor(t, "the app to be unsubscribed after 1 h of failures", func() bool { return subscribed() == false })

	// Re-subscribing through §8.10 brings it back; the dropped queue is not resent.
	f.bot.setFailing(false)
	mark := f.bot.mark()
	fields := "messages,message_echoes,message_reads,message_deliveries,messaging_postbacks,message_reactions,messaging_referrals,messaging_optins,messaging_handovers,standby"
	requireSuccessTrue(t, f.graphDo(graphCall{Path: graphV + "/" + pageID + "/subscribed_apps", Token: f.token(botID),
		Form: url.Values{"subscribed_fields": {fields}}}), "POST subscribed_apps")
	if s := subscribed(); s != true {
		t.Errorf("after POST subscribed_apps subscribed = %v, want true (§8.10)", s)
	}
	g := f.get(botID, graphV+"/"+pageID+"/subscribed_apps", nil)
	requireSuccess(t, g, "GET subscribed_apps")
	listed := false
	for _, it := range g.Body["data"].([]any) {
		if m, _ := it.(map[string]any); m["id"] == botID {
			listed = slices.Contains(anyStrings(m["subscribed_fields"]), "standby")
		}
	}
	if !listed {
		t.Errorf("GET subscribed_apps = %s, want the app with its subscribed_fields (§8.10)", g.Raw)
	}
	next := f.say(f.psid, "hello again")
	f.bot.waitMid(t, next)
	for _, ev := range f.bot.since(mark) {
		if msgMid(ev) == mid {
			t.Errorf("the queue of a disabled app was resent after re-subscribing (§4.4: dropped)")
		}
	}
}
