package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// deliveries reads /_emulator/deliveries for an app.
func (hs *harness) deliveries(app string) []deliveryRecord {
	hs.t.Helper()
	_, out := hs.do("GET", "/_emulator/deliveries?app="+app, "", "")
	b, _ := json.Marshal(out["deliveries"])
	var recs []deliveryRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		hs.t.Fatal(err)
	}
	return recs
}

// TestDeliveryRetryOverHTTP sends a real webhook that fails twice: the
// first retry is immediate, the next waits for 20 s of emulator clock, and
// every attempt carries identical bytes and signatures.
func TestDeliveryRetryOverHTTP(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	hk := newHook(t)
	hs.app(botID, "primary_receiver", hk, false)
	hs.flush()
	hk.reset()
	hk.mu.Lock()
	hk.status = []int{http.StatusInternalServerError, http.StatusAccepted}
	hk.mu.Unlock()

	psid := hs.user()
	hs.say(psid, "héllo/😀")
	hs.flush()
	if n := len(hk.events()); n != 2 {
		t.Fatalf("before the clock moves: %d attempts, want 2 (one at once, one immediate retry)", n)
	}
	hs.advance(19 * time.Second)
	if n := len(hk.events()); n != 2 {
		t.Fatalf("after 19 s: %d attempts, want 2", n)
	}
	hs.advance(time.Second)
	if n := len(hk.events()); n != 3 {
		t.Fatalf("after 20 s: %d attempts, want 3", n)
	}
	hs.advance(time.Minute)
	if n := len(hk.events()); n != 3 {
		t.Fatalf("after success: %d attempts, want 3", n)
	}

	hk.mu.Lock()
	posts := append([]post(nil), hk.posts...)
	hk.mu.Unlock()
	for i, p := range posts {
		if !bytes.Equal(p.body, posts[0].body) {
			t.Fatalf("attempt %d body differs", i+1)
		}
		for _, h := range []string{"X-Hub-Signature-256", "X-Hub-Signature"} {
			if p.header.Get(h) == "" || p.header.Get(h) != posts[0].header.Get(h) {
				t.Fatalf("attempt %d header %s = %q", i+1, h, p.header.Get(h))
			}
		}
	}
	s256, s1 := sign("s"+botID, posts[0].body)
	if posts[0].header.Get("X-Hub-Signature-256") != "sha256="+s256 || posts[0].header.Get("X-Hub-Signature") != "sha1="+s1 {
		t.Fatal("signatures are not over the exact body")
	}
	if !bytes.Contains(posts[0].body, []byte(`h\u00e9llo\/\ud83d\ude00`)) {
		t.Fatalf("body not Meta-escaped: %s", posts[0].body)
	}

	recs := hs.deliveries(botID)
	recs = recs[len(recs)-3:] // before them: the app_roles delivery
	var got []int
	for _, r := range recs {
		got = append(got, r.Status)
		if r.Body != string(posts[0].body) {
			t.Fatal("logged body differs from the sent bytes")
		}
	}
	if want := []int{500, 202, 200}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("logged statuses %v, want %v", got, want)
	}
	if recs[0].Attempt != 1 || recs[2].Attempt != 3 || recs[2].At-recs[1].At != 20000 {
		t.Fatalf("attempt log %+v", recs)
	}
}

func TestDeliveryDisabledAfterAnHour(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	hk := newHook(t)
	bot := hs.app(botID, "primary_receiver", hk, false)
	hs.flush()
	hk.mu.Lock()
	hk.status = make([]int, 1000)
	for i := range hk.status {
		hk.status[i] = http.StatusServiceUnavailable
	}
	hk.posts = nil
	hk.mu.Unlock()
	psid := hs.user()
	hs.say(psid, "one")
	hs.flush()
	hs.advance(16 * time.Minute)
	if !hs.appState(botID)["failing"].(bool) {
		t.Fatal("not failing after 15 min")
	}
	hs.advance(45 * time.Minute)
	st := hs.appState(botID)
	if st["subscribed"].(bool) {
		t.Fatal("still subscribed after 1 h of failures")
	}
	before := len(hk.events())
	hs.say(psid, "two")
	hs.flush()
	if len(hk.events()) != before {
		t.Fatal("an unsubscribed app received a POST")
	}
	hk.mu.Lock()
	hk.status = nil
	hk.mu.Unlock()
	_, out := hs.graph(bot, "POST", "/"+hs.e.PageID()+"/subscribed_apps", map[string]string{"subscribed_fields": "messages,standby"})
	if out["success"] != true {
		t.Fatalf("resubscribe: %v", out)
	}
	hs.say(psid, "three")
	hs.flush()
	evs := hk.events()
	last := evs[len(evs)-1]
	if last.raw["message"].(map[string]any)["text"] != "three" {
		t.Fatalf("after resubscribing got %v", last.raw)
	}
}

// appState returns one app of /_emulator/state.
func (hs *harness) appState(id string) map[string]any {
	hs.t.Helper()
	_, st := hs.do("GET", "/_emulator/state", "", "")
	for _, a := range st["apps"].([]any) {
		if m := a.(map[string]any); m["id"] == id {
			return m
		}
	}
	hs.t.Fatalf("no app %s", id)
	return nil
}

func TestDeliveryBatchesOnlyWhileInFlight(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	hk := newHook(t)
	hs.app(botID, "primary_receiver", hk, false)
	hs.flush()
	hk.reset()
	psid := hs.user()
	gate := make(chan struct{})
	hk.mu.Lock()
	hk.gate = gate
	hk.mu.Unlock()
	hs.say(psid, "first")
	<-hk.arrived // the first POST is in flight
	hs.say(psid, "second")
	hs.say(psid, "third")
	close(gate)
	hs.flush()
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if len(hk.posts) != 2 {
		t.Fatalf("%d POSTs, want 2", len(hk.posts))
	}
	var env wireEnvelope
	if err := json.Unmarshal(hk.posts[1].body, &env); err != nil {
		t.Fatal(err)
	}
	if len(env.Entry) != 2 || len(env.Entry[0].Messaging) != 1 || len(env.Entry[1].Messaging) != 1 {
		t.Fatalf("second POST: %s", hk.posts[1].body)
	}
}

func TestWebhookFaults(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	hk := newHook(t)
	hs.app(botID, "primary_receiver", hk, false)
	psid := hs.user()
	hs.flush()
	hk.reset()
	hs.ctl("PUT", "/_emulator/faults", map[string]any{"webhook_drop_rate": 1})
	hs.say(psid, "dropped")
	hs.flush()
	if len(hk.events()) != 0 {
		t.Fatal("a dropped delivery was sent")
	}
	if recs := hs.deliveries(botID); !recs[len(recs)-1].Dropped {
		t.Fatalf("drop not logged: %+v", recs[len(recs)-1])
	}
	hs.ctl("PUT", "/_emulator/faults", map[string]any{"webhook_drop_rate": 0, "webhook_duplicate_rate": 1})
	hs.say(psid, "twice")
	hs.flush()
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if len(hk.posts) != 2 || !bytes.Equal(hk.posts[0].body, hk.posts[1].body) {
		t.Fatalf("duplicate fault: %d POSTs", len(hk.posts))
	}
	_, f := hs.do("GET", "/_emulator/faults", "", "")
	if f["webhook_duplicate_rate"] == nil || f["ignore_thread_requests"] != false {
		t.Fatalf("faults %v", f)
	}
}

func TestVerificationFailureRejectsApp(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	hk := newHook(t)
	code, out := hs.do("POST", "/_emulator/apps", "application/json",
		`{"id":"1500000001","verify_token":"wrong","role":"primary_receiver","webhook_url":"`+hk.srv.URL+`"}`)
	if code < 400 || code >= 500 || out["error"].(map[string]any)["message"] == "" {
		t.Fatalf("status %d: %v", code, out)
	}
	if len(hs.deliveries("")) != 0 {
		t.Fatal("deliveries for a rejected app")
	}
}
