package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/apiwebhook"
	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/web"
)

// hookEvent is an outgoing webhook as a receiver decodes it.
type hookEvent struct {
	V            int    `json:"v"`
	ID           string `json:"id"`
	Type         string `json:"type"`
	At           string `json:"at"`
	Conversation *struct {
		ID             int64  `json:"id"`
		PSID           string `json:"psid"`
		Name           string `json:"name"`
		Status         string `json:"status"`
		Owner          string `json:"owner"`
		AssignedUserID *int64 `json:"assigned_user_id"`
	} `json:"conversation"`
	Data     map[string]any `json:"data"`
	delivery string
	raw      string
}

// hookReceiver is a CRM's endpoint: it refuses a bad signature and keeps
// every event it accepted.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	secret string
	events []hookEvent
	bad    int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := apiwebhook.Verify(h.secret, r.Header.Get(apiwebhook.HeaderSignature), body, time.Now(), time.Hour); err != nil {
			h.bad++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev hookEvent
		if err := json.Unmarshal(body, &ev); err != nil || r.Header.Get(apiwebhook.HeaderEvent) != ev.Type {
			h.bad++
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		ev.delivery, ev.raw = r.Header.Get(apiwebhook.HeaderDelivery), string(body)
		h.events = append(h.events, ev)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

// find returns the first event of type typ for which match holds.
func (h *hookReceiver) find(typ string, match func(hookEvent) bool) (hookEvent, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.events {
		if ev.Type == typ && (match == nil || match(ev)) {
			return ev, true
		}
	}
	return hookEvent{}, false
}

func (h *hookReceiver) wait(t *testing.T, typ string, match func(hookEvent) bool) hookEvent {
	t.Helper()
	var ev hookEvent
	waitFor(t, "a "+typ+" webhook", func() bool {
		var ok bool
		ev, ok = h.find(typ, match)
		return ok
	})
	return ev
}

var newSecret = regexp.MustCompile(`data-testid="new-webhook-secret">([^<]+)<`)

// postPage posts a console form and returns the status and page.
func (c *consoleClient) postPage(path string, form url.Values) (int, string) {
	c.t.Helper()
	form.Set("csrf_token", c.csrf)
	req, _ := http.NewRequest("POST", "http://"+c.addr+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+c.addr)
	req.AddCookie(c.cookie)
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOutgoingWebhooksJourney: an admin registers a receiver on the
// admin page (the secret is shown once); the person asks the bot for a
// human and the receiver gets conversation.handed_over with the bot's
// metadata; the person's HTML arrives as plain text in message.created;
// assignment and a tag through the API arrive marked "via": "api"; the
// agent's Done arrives as conversation.done with its metadata; the test
// button sends a signed webhook.test. Every delivery is signed.
func TestOutgoingWebhooksJourney(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	rc := newHookReceiver(t)
	admin := newConsoleClient(t, s, "admin@example.test")

	code, page := admin.postPage("/admin/webhooks", url.Values{"url": {rc.URL + "/baton"}, "events": {"conversation.exploded"}})
	if code != http.StatusBadRequest || !strings.Contains(page, "Unknown event type") {
		t.Fatalf("unknown event type: %d", code)
	}
	code, page = admin.postPage("/admin/webhooks", url.Values{"url": {rc.URL + "/baton"}, "events": baton.APIEventTypes})
	m := newSecret.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("create: %d, no secret on the page", code)
	}
	rc.mu.Lock()
	rc.secret = m[1]
	rc.mu.Unlock()
	if _, again := admin.get("/admin/webhooks"); strings.Contains(again, m[1]) {
		t.Fatal("the secret is shown again")
	}
	eps, err := s.inst.db.APIWebhookEndpoints(ctx)
	if err != nil || len(eps) != 1 {
		t.Fatalf("endpoints: %v %v", eps, err)
	}
	if n := s.auditCount(web.ActionWebhookCreate, fmt.Sprintf("api_webhook:%d", eps[0].ID)); n != 1 {
		t.Errorf("create audit lines: %d", n)
	}

	psid := handedOver(t, s, "Ines", "Lopez")
	conv := s.conversationOf(psid)
	ho := rc.wait(t, baton.APIEventHandedOver, func(e hookEvent) bool { return e.Conversation != nil && e.Conversation.PSID == psid })
	md, _ := ho.Data["metadata_json"].(map[string]any)
	if ho.V != 1 || ho.Conversation.ID != conv.ID || ho.Conversation.Name != "Ines Lopez" || md["reason"] == nil ||
		ho.Data["metadata"] == "" || ho.delivery != ho.ID {
		t.Errorf("handed_over: %s", ho.raw)
	}
	if _, err := time.Parse(time.RFC3339, ho.At); err != nil {
		t.Errorf("at: %v", err)
	}

	html := `<img src=x onerror=alert(1)> & <b>"bold"</b>`
	s.say(psid, html)
	msg := rc.wait(t, baton.APIEventMessageCreated, func(e hookEvent) bool {
		m, _ := e.Data["message"].(map[string]any)
		return m["text"] == html
	})
	if !strings.Contains(msg.raw, `<img src=x onerror=alert(1)> & <b>\"bold\"</b>`) || msg.Data["message"].(map[string]any)["author"] != "user" {
		t.Errorf("message.created: %s", msg.raw)
	}

	// Assignment and tags through the API.
	_, secret, err := s.inst.db.CreateAPIToken(ctx, s.admin.ID, "crm")
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/conversations/%d", conv.ID)
	if code := apiCall(t, s.inst.Addr(), secret, "POST", path+"/claim", nil, nil); code != http.StatusOK {
		t.Fatalf("claim: %d", code)
	}
	if code := apiCall(t, s.inst.Addr(), secret, "POST", path+"/tags", map[string]string{"name": "VIP"}, nil); code != http.StatusOK {
		t.Fatalf("tag: %d", code)
	}
	as := rc.wait(t, baton.APIEventAssigned, nil)
	if as.Data["action"] != "claim" || as.Data["via"] != "api" || as.Data["to_user_id"] != float64(s.admin.ID) {
		t.Errorf("assigned: %s", as.raw)
	}
	tg := rc.wait(t, baton.APIEventTagged, nil)
	if tg.Data["tag"] != "vip" || tg.Data["action"] != "added" || tg.Data["via"] != "api" {
		t.Errorf("tagged: %s", tg.raw)
	}

	// Done hands back with metadata; the receiver gets it as data.
	done := map[string]any{"outcome": "resolved", "note": "refund <sent>", "tags": []string{"billing"}}
	if code := apiCall(t, s.inst.Addr(), secret, "POST", path+"/done", done, nil); code != http.StatusAccepted {
		t.Fatalf("done: %d", code)
	}
	dn := rc.wait(t, baton.APIEventDone, nil)
	mdj, _ := dn.Data["metadata_json"].(map[string]any)
	if dn.Data["outcome"] != "resolved" || dn.Data["note"] != "refund <sent>" || dn.Data["reason"] != "done" ||
		mdj["conversation_id"] == nil || dn.Conversation.ID != conv.ID {
		t.Errorf("done: %s", dn.raw)
	}

	// The test button.
	if code := admin.post(fmt.Sprintf("/admin/webhooks/%d/test", eps[0].ID), nil); code != http.StatusSeeOther {
		t.Fatalf("test: %d", code)
	}
	test := rc.wait(t, baton.APIEventTest, nil)
	if test.Conversation != nil || !strings.HasPrefix(test.ID, "test_") {
		t.Errorf("test event: %s", test.raw)
	}
	waitFor(t, "the test delivery's outcome on the page", func() bool {
		_, page := admin.get("/admin/webhooks")
		return strings.Contains(page, test.ID) && strings.Contains(page, "sent · HTTP 204")
	})

	// Each event went once (the dispatcher never queues a row twice).
	rc.mu.Lock()
	seen := map[string]int{}
	for _, ev := range rc.events {
		seen[ev.ID]++
		if seen[ev.ID] > 1 {
			t.Errorf("event %s delivered twice", ev.ID)
		}
	}
	if rc.bad != 0 {
		t.Errorf("%d deliveries failed the receiver's checks", rc.bad)
	}
	rc.mu.Unlock()

	// Disabled: nothing more is queued for it.
	if code := admin.post(fmt.Sprintf("/admin/webhooks/%d/disable", eps[0].ID), nil); code != http.StatusSeeOther {
		t.Fatalf("disable: %d", code)
	}
	if n := s.auditCount(web.ActionWebhookDisable, fmt.Sprintf("api_webhook:%d", eps[0].ID)); n != 1 {
		t.Errorf("disable audit lines: %d", n)
	}
}
