package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
)

func TestSwitchesShapeWebhooks(t *testing.T) {
	tests := []struct {
		name     string
		switches map[string]any
		check    func(t *testing.T, p post)
	}{
		{"app ids as strings", map[string]any{"app_id_json": "string"}, func(t *testing.T, p post) {
			if !bytes.Contains(p.body, []byte(`"new_owner_app_id":"2500000002"`)) {
				t.Fatalf("body %s", p.body)
			}
		}},
		{"plain escaping", map[string]any{"json_escaping": "plain"}, func(t *testing.T, p post) {
			if !bytes.Contains(p.body, []byte(`"metadata":"ä/b"`)) {
				t.Fatalf("body %s", p.body)
			}
		}},
		{"no signatures", map[string]any{"signature_headers": "none"}, func(t *testing.T, p post) {
			if p.header.Get("X-Hub-Signature-256") != "" || p.header.Get("X-Hub-Signature") != "" {
				t.Fatalf("headers %v", p.header)
			}
		}},
		{"sha1 only", map[string]any{"signature_headers": "sha1"}, func(t *testing.T, p post) {
			_, s1 := sign("s"+batonID, p.body)
			if p.header.Get("X-Hub-Signature-256") != "" || p.header.Get("X-Hub-Signature") != "sha1="+s1 {
				t.Fatalf("headers %v", p.header)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, ModeRouting)
			hk := newHook(t)
			bot := hs.app(botID, "primary_receiver", nil, false)
			hs.app(batonID, "secondary_receiver", hk, false)
			psid := hs.user()
			hs.ctl("PUT", "/_emulator/switches", tt.switches)
			hk.reset()
			hs.graph(bot, "POST", "/me/pass_thread_control", map[string]any{"recipient": map[string]string{"id": psid}, "target_app_id": batonID, "metadata": "ä/b"})
			hs.flush()
			hk.mu.Lock()
			defer hk.mu.Unlock()
			if len(hk.posts) != 1 {
				t.Fatalf("%d posts", len(hk.posts))
			}
			tt.check(t, hk.posts[0])
		})
	}
}

func TestSwitchValidation(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	for _, body := range []string{`{"app_id_json":"hex"}`, `{"batch_max":0}`, `{"status_190":500}`, `{"disable_after":"2h"}`} {
		if code, _ := hs.do("PUT", "/_emulator/switches", "application/json", body); code != http.StatusBadRequest {
			t.Fatalf("%s accepted with %d", body, code)
		}
	}
	hs.ctl("PUT", "/_emulator/switches", map[string]any{"status_190": 401})
	code, _ := hs.do("GET", "/me/thread_owner?access_token=bad", "", "")
	if code != http.StatusUnauthorized {
		t.Fatalf("status_190=401 answered %d", code)
	}
}

func TestProfileAndSecondaryReceivers(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	bot := hs.app(botID, "primary_receiver", nil, false)
	baton := hs.app(batonID, "secondary_receiver", nil, false)
	psid := hs.user()
	_, out := hs.graph(baton, "GET", "/v25.0/"+psid+"?fields=first_name,last_name,profile_pic", nil)
	if out["first_name"] != "Ana" || out["last_name"] != "Lima" || out["id"] != psid {
		t.Fatalf("profile %v", out)
	}
	if pic, _ := out["profile_pic"].(string); !bytes.Contains([]byte(pic), []byte("/pic/"+psid+".svg?ext=")) {
		t.Fatalf("profile_pic %q", pic)
	}
	_, out = hs.graph(baton, "GET", "/"+psid+"?fields=email", nil)
	if c, _ := graphCode(out); c != 100 {
		t.Fatalf("unknown field: %v", out)
	}
	hidden := hs.ctl("POST", "/_emulator/users", map[string]any{"first_name": "No", "no_profile": true})["psid"].(string)
	if _, out = hs.graph(baton, "GET", "/"+hidden+"?fields=first_name", nil); func() bool { _, s := graphCode(out); return s != 2018218 }() {
		t.Fatalf("no_profile: %v", out)
	}
	if _, out = hs.graph(baton, "GET", "/me/secondary_receivers?fields=id,name", nil); func() bool { c, _ := graphCode(out); return c != 10 }() {
		t.Fatalf("secondary listing secondaries: %v", out)
	}
	_, out = hs.graph(bot, "GET", "/me/secondary_receivers?fields=id,name", nil)
	got, _ := json.Marshal(out["data"])
	if want := `[{"id":"263902037430900","name":"Page Inbox"},{"id":"2500000002","name":"app2500000002"}]`; string(got) != want {
		t.Fatalf("secondary_receivers %s, want %s", got, want)
	}
	rec := httptestGet(hs, "/pic/"+psid+".svg")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/svg+xml" || !bytes.Contains(rec.Body.Bytes(), []byte(">AL<")) {
		t.Fatalf("avatar %d %s", rec.Code, rec.Body)
	}
}

func TestAttachmentFetchSwitch(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	bot := hs.app(botID, "primary_receiver", nil, false)
	psid := hs.user()
	hs.say(psid, "hi")
	send := func() (int64, int64) {
		_, out := hs.graph(bot, "POST", "/me/messages", map[string]any{"recipient": map[string]string{"id": psid}, "messaging_type": "RESPONSE",
			"message": map[string]any{"attachment": map[string]any{"type": "image", "payload": map[string]any{"url": "https://cdn.example/a.png"}}}})
		return graphCode(out)
	}
	if c, _ := send(); c != 0 {
		t.Fatalf("default skip: code %d", c)
	}
	hs.ctl("PUT", "/_emulator/switches", map[string]string{"attachment_fetch": "fail"})
	if c, s := send(); c != 100 || s != 2018008 {
		t.Fatalf("fail: %d/%d", c, s)
	}
}
