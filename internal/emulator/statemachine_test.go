package emulator

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	botID   = "1500000001"
	batonID = "2500000002"
)

// step is one action of a state-machine scenario and what must follow it.
type step struct {
	op        string // say, send, pass, take, request, release, extend, advance, check
	by        string // "bot" or "baton"
	wantCode  int64
	wantSub   int64
	wantOwner string   // "bot", "baton" or "" (idle)
	wantBot   []string // events the bot receives, as "channel:kind"
	wantBaton []string
}

// scenario sets up a bot (Primary) and Baton (Secondary) and runs steps.
func runScenario(t *testing.T, mode string, steps []step) {
	t.Helper()
	hs := newHarness(t, mode)
	botHook, batonHook := newHook(t), newHook(t)
	tokens := map[string]string{
		"bot":   hs.app(botID, "primary_receiver", botHook, false),
		"baton": hs.app(batonID, "secondary_receiver", batonHook, true),
	}
	ids := map[string]string{"bot": botID, "baton": batonID, "": ""}
	psid := hs.user()
	hs.flush()
	botHook.reset()
	batonHook.reset()
	for i, s := range steps {
		var code, sub int64
		recipient := map[string]string{"id": psid}
		switch s.op {
		case "say":
			hs.say(psid, "hello")
		case "send":
			_, out := hs.graph(tokens[s.by], "POST", "/v25.0/me/messages", map[string]any{
				"recipient": recipient, "messaging_type": "RESPONSE", "message": map[string]string{"text": "reply"}})
			code, sub = graphCode(out)
		case "pass":
			target := botID
			if s.by == "bot" {
				target = batonID
			}
			_, out := hs.graph(tokens[s.by], "POST", "/v25.0/me/pass_thread_control", map[string]any{
				"recipient": recipient, "target_app_id": json.Number(target), "metadata": "md"})
			code, sub = graphCode(out)
		case "take", "request", "release":
			_, out := hs.graph(tokens[s.by], "POST", "/v25.0/me/"+s.op+"_thread_control", map[string]any{"recipient": recipient})
			code, sub = graphCode(out)
		case "extend":
			_, out := hs.graph(tokens[s.by], "POST", "/v25.0/me/extend_thread_control", map[string]any{"recipient": recipient, "duration": 3 * 86400})
			code, sub = graphCode(out)
		case "advance":
			hs.advance(24 * time.Hour)
		case "check":
		default:
			t.Fatalf("step %d: unknown op %s", i, s.op)
		}
		if code != s.wantCode || sub != s.wantSub {
			t.Fatalf("step %d (%s by %s): error %d/%d, want %d/%d", i, s.op, s.by, code, sub, s.wantCode, s.wantSub)
		}
		if got := hs.owner(psid); got != ids[s.wantOwner] {
			t.Fatalf("step %d (%s by %s): owner %q, want %q", i, s.op, s.by, got, ids[s.wantOwner])
		}
		hs.flush()
		for _, c := range []struct {
			name string
			hook *hook
			want []string
		}{{"bot", botHook, s.wantBot}, {"baton", batonHook, s.wantBaton}} {
			var got []string
			for _, ev := range c.hook.events() {
				got = append(got, ev.channel+":"+ev.kind())
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("step %d (%s by %s): %s got %v, want %v", i, s.op, s.by, c.name, got, c.want)
			}
			c.hook.reset()
		}
	}
}

var (
	echoM   = []string{"messaging:echo", "messaging:delivery"}
	echoS   = []string{"standby:echo", "standby:delivery"}
	msgM    = []string{"messaging:message"}
	msgS    = []string{"standby:message"}
	passM   = []string{"messaging:pass_thread_control"}
	takeM   = []string{"messaging:take_thread_control"}
	requstM = []string{"messaging:request_thread_control"}
)

func TestStateMachineRouting(t *testing.T) {
	runScenario(t, ModeRouting, []step{
		{op: "check", wantOwner: ""},
		{op: "say", wantOwner: "bot", wantBot: msgM, wantBaton: msgS},
		{op: "send", by: "baton", wantCode: 10, wantSub: 2018300, wantOwner: "bot"},
		{op: "send", by: "bot", wantOwner: "bot", wantBot: echoM, wantBaton: echoS},
		{op: "pass", by: "baton", wantCode: 100, wantSub: 2534037, wantOwner: "bot"},
		{op: "pass", by: "bot", wantOwner: "baton", wantBaton: passM},
		{op: "send", by: "baton", wantOwner: "baton", wantBot: echoS, wantBaton: echoM},
		{op: "say", wantOwner: "baton", wantBot: msgS, wantBaton: msgM},
		{op: "extend", by: "bot", wantCode: 100, wantSub: 2534037, wantOwner: "baton"},
		{op: "extend", by: "baton", wantOwner: "baton"},
		{op: "take", by: "bot", wantOwner: "bot", wantBaton: takeM},
		{op: "take", by: "bot", wantOwner: "bot"},
		{op: "take", by: "baton", wantCode: 10, wantOwner: "bot"},
		{op: "request", by: "baton", wantOwner: "bot", wantBot: requstM},
		{op: "request", by: "bot", wantCode: 10, wantOwner: "bot"},
		{op: "release", by: "baton", wantCode: 100, wantSub: 2534037, wantOwner: "bot"},
		{op: "release", by: "bot", wantOwner: ""},
		{op: "send", by: "baton", wantOwner: "", wantBot: echoM, wantBaton: echoM},
		{op: "pass", by: "baton", wantOwner: "bot", wantBot: passM},
		{op: "advance", wantOwner: ""},
		{op: "take", by: "bot", wantOwner: "bot"},
		{op: "pass", by: "bot", wantOwner: "baton", wantBaton: passM},
		{op: "advance", wantOwner: ""},
		{op: "say", wantOwner: "bot", wantBot: msgM, wantBaton: msgS},
	})
}

func TestStateMachineRoutingCR(t *testing.T) {
	runScenario(t, ModeRoutingCR, []step{
		{op: "check", wantOwner: ""},
		{op: "take", by: "bot", wantOwner: "bot", wantBot: takeM, wantBaton: takeM},
		{op: "release", by: "bot", wantOwner: ""},
		{op: "say", wantOwner: "bot", wantBot: msgM, wantBaton: msgS},
		{op: "pass", by: "bot", wantOwner: "baton", wantBot: passM, wantBaton: passM},
		{op: "take", by: "bot", wantOwner: "bot", wantBot: takeM, wantBaton: takeM},
		{op: "release", by: "bot", wantOwner: ""},
		{op: "send", by: "baton", wantCode: 10, wantSub: 2018300, wantOwner: ""},
		{op: "send", by: "bot", wantOwner: "", wantBot: echoM, wantBaton: echoM},
		{op: "request", by: "baton", wantOwner: "", wantBot: requstM},
	})
}

func TestStateMachineClassic(t *testing.T) {
	runScenario(t, ModeClassic, []step{
		{op: "check", wantOwner: "bot"},
		{op: "say", wantOwner: "bot", wantBot: msgM, wantBaton: msgS},
		{op: "send", by: "baton", wantOwner: "bot", wantBot: echoM, wantBaton: echoS},
		{op: "pass", by: "bot", wantOwner: "baton", wantBaton: passM},
		{op: "release", by: "baton", wantCode: 2500, wantOwner: "baton"},
		{op: "extend", by: "baton", wantCode: 2500, wantOwner: "baton"},
		{op: "advance", wantOwner: "baton"},
		{op: "take", by: "bot", wantOwner: "bot", wantBaton: takeM},
		{op: "advance", wantOwner: "bot"},
	})
}

// handoverPayload returns the body of the first handover event of kind.
func handoverPayload(t *testing.T, h *hook, kind string) map[string]any {
	t.Helper()
	for _, ev := range h.events() {
		if ev.kind() == kind {
			return ev.raw[kind].(map[string]any)
		}
	}
	t.Fatalf("no %s event", kind)
	return nil
}

func TestHandoverPayloadShapes(t *testing.T) {
	tests := []struct {
		mode string
		kind string
		want map[string]any
	}{
		{ModeRouting, "pass_thread_control", map[string]any{"previous_owner_app_id": nil, "new_owner_app_id": json.Number(batonID)}},
		{ModeRoutingCR, "pass_thread_control", map[string]any{"previous_owner_app_id": nil, "new_owner_app_id": json.Number(batonID)}},
		{ModeClassic, "pass_thread_control", map[string]any{"new_owner_app_id": json.Number(batonID)}},
		{ModeRouting, "take_thread_control", map[string]any{"previous_owner_app_id": json.Number(batonID), "new_owner_app_id": json.Number(botID), "metadata": "back"}},
		{ModeClassic, "take_thread_control", map[string]any{"previous_owner_app_id": json.Number(batonID), "metadata": "back"}},
		{ModeRouting, "request_thread_control", map[string]any{"requested_owner_app_id": json.Number(batonID), "metadata": "VIP"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.kind, func(t *testing.T) {
			hs := newHarness(t, tt.mode)
			botHook, batonHook := newHook(t), newHook(t)
			bot := hs.app(botID, "primary_receiver", botHook, false)
			baton := hs.app(batonID, "secondary_receiver", batonHook, false)
			psid := hs.user()
			recipient := map[string]string{"id": psid}
			// An idle thread in the routing modes: the pass has previous null and no metadata.
			hs.graph(bot, "POST", "/me/pass_thread_control", map[string]any{"recipient": recipient, "target_app_id": batonID})
			switch tt.kind {
			case "take_thread_control":
				hs.graph(bot, "POST", "/me/take_thread_control", map[string]any{"recipient": recipient, "metadata": "back"})
			case "request_thread_control":
				hs.graph(bot, "POST", "/me/take_thread_control", map[string]any{"recipient": recipient})
				hs.graph(baton, "POST", "/me/request_thread_control", map[string]any{"recipient": recipient, "metadata": "VIP"})
			}
			hs.flush()
			h := batonHook
			if tt.kind == "request_thread_control" {
				h = botHook
			}
			got := handoverPayload(t, h, tt.kind)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("payload %v, want %v", got, tt.want)
			}
			for _, ev := range h.events() {
				if ev.kind() == tt.kind {
					if ev.channel != chanMessaging || ev.raw["sender"].(map[string]any)["id"] != psid || ev.raw["recipient"].(map[string]any)["id"] != hs.e.PageID() {
						t.Fatalf("wrapper %v on %s", ev.raw, ev.channel)
					}
				}
			}
		})
	}
}

func TestAppRolesAndPrimaryDemotion(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	oldHook, newHookApp := newHook(t), newHook(t)
	hs.app("1000000001", "primary_receiver", oldHook, false)
	hs.flush()
	roles := handoverPayload(t, oldHook, "app_roles")
	if !reflect.DeepEqual(roles, map[string]any{"1000000001": []any{"primary_receiver"}}) {
		t.Fatalf("app_roles %v", roles)
	}
	oldHook.reset()
	hs.app("1000000002", "primary_receiver", newHookApp, false)
	hs.flush()
	if roles := handoverPayload(t, oldHook, "app_roles"); !reflect.DeepEqual(roles, map[string]any{"1000000001": []any{}}) {
		t.Fatalf("demoted app_roles %v", roles)
	}
	for _, ev := range oldHook.events() {
		if _, ok := ev.raw["sender"]; ok {
			t.Fatalf("app_roles has a sender: %v", ev.raw)
		}
	}
	_, st := hs.do("GET", "/_emulator/state", "", "")
	roleOf := map[string]any{}
	for _, a := range st["apps"].([]any) {
		m := a.(map[string]any)
		roleOf[m["id"].(string)] = m["role"]
	}
	if roleOf["1000000001"] != "none" || roleOf["1000000002"] != "primary_receiver" || roleOf["263902037430900"] != "secondary_receiver" {
		t.Fatalf("roles %v", roleOf)
	}
}

func TestPageInbox(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	botHook := newHook(t)
	bot := hs.app(botID, "primary_receiver", botHook, false)
	psid := hs.user()
	hs.say(psid, "hi")
	_, out := hs.graph(bot, "POST", "/me/pass_thread_control", map[string]any{"recipient": map[string]string{"id": psid}, "target_app_id": "263902037430900"})
	if c, _ := graphCode(out); c != 0 {
		t.Fatalf("pass to inbox: %v", out)
	}
	if hs.owner(psid) != "263902037430900" {
		t.Fatal("inbox does not own the thread")
	}
	hs.ctl("POST", "/_emulator/page-inbox/"+psid+"/messages", map[string]string{"text": "from the inbox"})
	hs.flush()
	botHook.reset()
	hs.ctl("POST", "/_emulator/page-inbox/"+psid+"/done", nil)
	hs.flush()
	got := handoverPayload(t, botHook, "pass_thread_control")
	want := map[string]any{"previous_owner_app_id": json.Number("263902037430900"), "new_owner_app_id": json.Number(botID), "metadata": "Pass thread control from Page Inbox"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("done payload %v", got)
	}
	botHook.reset()
	hs.ctl("POST", "/_emulator/page-inbox/"+psid+"/request", nil)
	hs.flush()
	if got := handoverPayload(t, botHook, "request_thread_control"); !reflect.DeepEqual(got, map[string]any{"requested_owner_app_id": json.Number("263902037430900")}) {
		t.Fatalf("request payload %v", got)
	}
	_, conv := hs.do("GET", "/_emulator/users/"+psid+"/conversation", "", "")
	msgs := conv["messages"].([]any)
	last := msgs[len(msgs)-1].(map[string]any)
	if last["app_id"] != "263902037430900" || last["from"] != "page" {
		t.Fatalf("inbox reply %v", last)
	}
}

func TestReactionAndReferralGoToOwnerOnly(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	botHook, batonHook := newHook(t), newHook(t)
	bot := hs.app(botID, "primary_receiver", botHook, false)
	hs.app(batonID, "secondary_receiver", batonHook, false)
	psid := hs.user()
	hs.ctl("POST", "/_emulator/users/"+psid+"/referrals", map[string]string{"ref": "spring"})
	if hs.owner(psid) != botID {
		t.Fatal("a referral on an idle thread did not give it to the Primary")
	}
	_, out := hs.graph(bot, "POST", "/me/messages", map[string]any{"recipient": map[string]string{"id": psid}, "messaging_type": "RESPONSE", "message": map[string]string{"text": "hi"}})
	hs.flush()
	botHook.reset()
	batonHook.reset()
	hs.ctl("POST", "/_emulator/users/"+psid+"/reactions", map[string]string{"mid": out["message_id"].(string), "reaction": "love"})
	hs.flush()
	evs := botHook.events()
	if len(evs) != 1 || evs[0].channel != chanMessaging {
		t.Fatalf("bot got %v", evs)
	}
	r := evs[0].raw["reaction"].(map[string]any)
	if r["reaction"] != "love" || r["emoji"] != "\u2764\ufe0f" || r["action"] != "react" || r["mid"] != out["message_id"] {
		t.Fatalf("reaction %v", r)
	}
	if n := len(batonHook.events()); n != 0 {
		t.Fatalf("a non-owner got %d reaction events", n)
	}
}
