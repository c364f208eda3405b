package demobot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/emulator"
	"github.com/baton-chat/baton/internal/emulator/demobot"
)

// liveness bounds how long the over-HTTP test waits for something that
// should happen; it only stops a broken run from hanging and asserts nothing
// about speed.
const liveness = 20 * time.Second

const (
	botID    = "1500000001"
	batonID  = "2500000002"
	batonKey = "batonsecret"
)

// secondary is a minimal Secondary Receiver: it answers the challenge and
// records the pass_thread_control events it receives.
type secondary struct {
	mu     sync.Mutex
	passes []map[string]any
}

func (s *secondary) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		if r.URL.Query().Get("hub.verify_token") != "batonverify" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, r.URL.Query().Get("hub.challenge"))
		return
	}
	body, _ := io.ReadAll(r.Body)
	var env struct {
		Entry []struct {
			Messaging []map[string]any `json:"messaging"`
		} `json:"entry"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&env); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	for _, e := range env.Entry {
		for _, ev := range e.Messaging {
			if p, ok := ev["pass_thread_control"].(map[string]any); ok {
				s.passes = append(s.passes, p)
			}
		}
	}
	s.mu.Unlock()
	_, _ = io.WriteString(w, "EVENT_RECEIVED")
}

func (s *secondary) passesToMe() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, p := range s.passes {
		if fmt.Sprint(p["new_owner_app_id"]) == batonID {
			out = append(out, p)
		}
	}
	return out
}

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path string, in, out any) {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		raw, _ := json.Marshal(in)
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

// pageTexts are the texts the Page (any app) sent the person, in order.
func (c client) pageTexts(psid string) []string {
	var conv struct {
		Messages []struct {
			From string `json:"from"`
			Text string `json:"text"`
		} `json:"messages"`
	}
	c.do(http.MethodGet, "/_emulator/users/"+psid+"/conversation", nil, &conv)
	var out []string
	for _, m := range conv.Messages {
		if m.From == "page" {
			out = append(out, m.Text)
		}
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(liveness)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasText(texts []string, prefix string) bool {
	for _, s := range texts {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func TestOverHTTPWithTheEmulator(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	emu, err := emulator.New(emulator.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	emuSrv := httptest.NewServer(emu.Handler())
	defer emuSrv.Close()
	c := client{t: t, base: emuSrv.URL}

	bot := demobot.New(demobot.Config{EmulatorURL: emuSrv.URL, AppID: botID, RequestDelay: -1, Logger: quiet})
	defer bot.Close()
	botSrv := httptest.NewServer(bot)
	defer botSrv.Close()
	if err := bot.Register(context.Background(), botSrv.URL+"/webhook"); err != nil {
		t.Fatal(err)
	}

	sec := &secondary{}
	secSrv := httptest.NewServer(sec)
	defer secSrv.Close()
	var reg struct {
		PageAccessToken string `json:"page_access_token"`
	}
	c.do(http.MethodPost, "/_emulator/apps", map[string]any{
		"id": batonID, "name": "Baton", "secret": batonKey, "verify_token": "batonverify",
		"webhook_url": secSrv.URL + "/webhook", "role": "secondary_receiver", "human_agent": true,
	}, &reg)

	var person struct {
		PSID string `json:"psid"`
	}
	c.do(http.MethodPost, "/_emulator/users", map[string]any{"first_name": "Peter", "last_name": "Chang"}, &person)
	psid := person.PSID

	c.do(http.MethodPost, "/_emulator/users/"+psid+"/messages", map[string]any{"text": "hi"}, nil)
	waitUntil(t, "the greeting", func() bool { return hasText(c.pageTexts(psid), "Hi Peter! I'm the Northwind bot") })

	c.do(http.MethodPost, "/_emulator/users/"+psid+"/messages", map[string]any{"text": "my invoice is wrong, talk to a human"}, nil)
	waitUntil(t, "the pass to the secondary", func() bool { return len(sec.passesToMe()) > 0 })
	if !hasText(c.pageTexts(psid), "Connecting you with a person from our team") {
		t.Errorf("the bot did not announce the handover: %q", c.pageTexts(psid))
	}
	pass := sec.passesToMe()[0]
	if got := fmt.Sprint(pass["previous_owner_app_id"]); got != botID {
		t.Errorf("previous_owner_app_id = %s, want %s", got, botID)
	}
	var meta map[string]string
	if err := json.Unmarshal([]byte(fmt.Sprint(pass["metadata"])), &meta); err != nil {
		t.Fatalf("pass metadata is not JSON: %v (%v)", err, pass["metadata"])
	}
	if meta["reason"] != "asked_for_human" || meta["team"] != "billing" || meta["asked"] != "my invoice is wrong, talk to a human" {
		t.Errorf("pass metadata = %v", meta)
	}

	// The Secondary hands back with Baton's Done contract.
	done := map[string]any{
		"recipient":     map[string]string{"id": psid},
		"target_app_id": botID,
		"metadata":      `{"v":1,"outcome":"resolved","note":"Invoice fixed","tags":["billing"],"agent":{"id":"u_1","name":"Ana"},"conversation_id":"c_1"}`,
	}
	c.do(http.MethodPost, "/v25.0/me/pass_thread_control?access_token="+reg.PageAccessToken, done, nil)
	waitUntil(t, "the bot's reply to the hand-back", func() bool { return hasText(c.pageTexts(psid), "Glad that's sorted") })
	texts := c.pageTexts(psid)
	if last := texts[len(texts)-1]; !strings.Contains(last, "Ana") {
		t.Errorf("hand-back reply does not mention the agent: %q", last)
	}

	// A supervisor asks for the thread back: the bot honours the request.
	c.do(http.MethodPost, "/v25.0/me/request_thread_control?access_token="+reg.PageAccessToken, map[string]any{
		"recipient": map[string]string{"id": psid},
		"metadata":  `{"v":1,"reason":"VIP customer"}`,
	}, nil)
	waitUntil(t, "the pass that honours the request", func() bool { return len(sec.passesToMe()) == 2 })
	if err := json.Unmarshal([]byte(fmt.Sprint(sec.passesToMe()[1]["metadata"])), &meta); err != nil || meta["reason"] != "requested" {
		t.Errorf("request pass metadata = %v (%v)", sec.passesToMe()[1]["metadata"], err)
	}
	var state struct {
		Threads []struct {
			PSID  string  `json:"psid"`
			Owner *string `json:"owner_app_id"`
		} `json:"threads"`
	}
	c.do(http.MethodGet, "/_emulator/state", nil, &state)
	for _, th := range state.Threads {
		if th.PSID == psid && (th.Owner == nil || *th.Owner != batonID) {
			t.Errorf("thread owner = %v, want %s", th.Owner, batonID)
		}
	}
}
