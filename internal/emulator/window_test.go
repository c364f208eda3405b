package emulator

import (
	"testing"
	"time"
)

func TestMessagingWindow(t *testing.T) {
	tests := []struct {
		name       string
		age        time.Duration // since the person's last message; < 0 = never wrote
		typ, tag   string
		humanAgent bool
		wantSub    int64 // 0 = success
	}{
		{"response fresh", time.Minute, "RESPONSE", "", false, 0},
		{"update just inside 24 h", 24*time.Hour - time.Second, "UPDATE", "", false, 0},
		{"response at 24 h", 24 * time.Hour, "RESPONSE", "", false, 2018278},
		{"response after 25 h", 25 * time.Hour, "RESPONSE", "", false, 2018278},
		{"human agent after 25 h", 25 * time.Hour, "MESSAGE_TAG", "HUMAN_AGENT", true, 0},
		{"human agent just inside 7 d", 7*24*time.Hour - time.Second, "MESSAGE_TAG", "HUMAN_AGENT", true, 0},
		{"human agent at 7 d", 7 * 24 * time.Hour, "MESSAGE_TAG", "HUMAN_AGENT", true, 2018278},
		{"human agent without permission", 25 * time.Hour, "MESSAGE_TAG", "HUMAN_AGENT", false, 2018278},
		{"customer feedback outside 24 h", 25 * time.Hour, "MESSAGE_TAG", "CUSTOMER_FEEDBACK", true, 2018278},
		{"person never wrote", -1, "RESPONSE", "", false, 2018278},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, ModeClassic) // classic: no expiry, so only the window decides
			bot := hs.app(botID, "primary_receiver", nil, tt.humanAgent)
			psid := hs.user()
			if tt.age >= 0 {
				hs.say(psid, "hi")
				hs.advance(tt.age)
			}
			body := map[string]any{"recipient": map[string]string{"id": psid}, "messaging_type": tt.typ, "message": map[string]string{"text": "x"}}
			if tt.tag != "" {
				body["tag"] = tt.tag
			}
			_, out := hs.graph(bot, "POST", "/me/messages", body)
			code, sub := graphCode(out)
			if sub != tt.wantSub || (tt.wantSub != 0 && code != 10) {
				t.Fatalf("got %d/%d, want 10/%d: %v", code, sub, tt.wantSub, out)
			}
		})
	}
}

func TestSenderActions(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	bot := hs.app(botID, "primary_receiver", nil, false)
	psid := hs.user()
	hs.say(psid, "hi")
	recipient := map[string]string{"id": psid}
	_, out := hs.graph(bot, "POST", "/me/messages", map[string]any{"recipient": recipient, "sender_action": "typing_on", "message": map[string]string{"text": "x"}})
	if c, s := graphCode(out); c != 100 || s != 2018014 {
		t.Fatalf("combined: %v", out)
	}
	_, out = hs.graph(bot, "POST", "/me/messages", map[string]any{"recipient": recipient, "sender_action": "typing_on"})
	if out["recipient_id"] != psid || out["message_id"] != nil {
		t.Fatalf("typing_on answer %v", out)
	}
	_, conv := hs.do("GET", "/_emulator/users/"+psid+"/conversation", "", "")
	if conv["typing"] != true {
		t.Fatalf("typing not shown: %v", conv)
	}
	hs.graph(bot, "POST", "/me/messages", map[string]any{"recipient": recipient, "sender_action": "mark_seen"})
	_, conv = hs.do("GET", "/_emulator/users/"+psid+"/conversation", "", "")
	if m := conv["messages"].([]any)[0].(map[string]any); m["seen"] != true {
		t.Fatalf("mark_seen not shown: %v", m)
	}
	hs.advance(25 * time.Hour)
	hs.say(psid, "again") // the thread expired; this gives it back to the bot
	hs.advance(25 * time.Hour)
	hs.graph(bot, "POST", "/me/take_thread_control", map[string]any{"recipient": recipient})
	_, out = hs.graph(bot, "POST", "/me/messages", map[string]any{"recipient": recipient, "sender_action": "typing_on"})
	if c, s := graphCode(out); c != 10 || s != 2018278 {
		t.Fatalf("typing outside the window: %v", out)
	}
}

func TestThreadOwnerVisibility(t *testing.T) {
	hs := newHarness(t, ModeRoutingCR)
	bot := hs.app(botID, "primary_receiver", nil, false)
	baton := hs.app(batonID, "secondary_receiver", nil, false)
	other := hs.app("3500000003", "secondary_receiver", nil, false)
	psid := hs.user()
	q := "/me/thread_owner?recipient=" + psid
	if _, out := hs.graph(bot, "GET", q, nil); len(out["data"].([]any)) != 0 {
		t.Fatalf("idle thread: %v", out)
	}
	hs.say(psid, "hi")
	hs.graph(bot, "POST", "/me/pass_thread_control", map[string]any{"recipient": map[string]string{"id": psid}, "target_app_id": batonID})
	for _, c := range []struct {
		name, token string
		wantSub     int64
	}{{"primary", bot, 0}, {"owner", baton, 0}, {"other secondary", other, 2018234}} {
		_, out := hs.graph(c.token, "GET", q, nil)
		if _, sub := graphCode(out); sub != c.wantSub {
			t.Fatalf("%s: %v", c.name, out)
		}
		if c.wantSub == 0 {
			owner := out["data"].([]any)[0].(map[string]any)["thread_owner"].(map[string]any)
			if owner["app_id"] != batonID || owner["expiration"] == nil {
				t.Fatalf("%s: owner %v", c.name, owner)
			}
		}
	}
}

func TestRateWindow(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if !w.allow(t0.Add(time.Duration(i)*time.Millisecond), 3) {
			t.Fatalf("call %d refused", i)
		}
	}
	if w.allow(t0.Add(999*time.Millisecond), 3) {
		t.Fatal("fourth call within a second allowed")
	}
	if !w.allow(t0.Add(time.Second), 3) {
		t.Fatal("call after the first left the window refused")
	}
}
