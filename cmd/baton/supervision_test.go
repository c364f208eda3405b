package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
)

// handedOver runs the demo's handover: the person asks for a human and
// the bot passes the thread to Baton.
func (s *testStack) handedOver(first string) (string, *baton.Conversation) {
	s.t.Helper()
	psid := s.newPerson(first, "Tester")
	s.say(psid, "hi")
	waitFor(s.t, "the bot's greeting", func() bool { return s.pageSays(psid, demoBotAppID, "Hi "+first) })
	s.say(psid, "my parcel is lost, talk to a human please")
	waitFor(s.t, "the handover to Baton", func() bool {
		c := s.conversationOf(psid)
		return c != nil && c.Status == baton.StatusOpen
	})
	return psid, s.conversationOf(psid)
}

// emulatorOwner is the thread's owner in the emulator ("" when idle).
func (s *testStack) emulatorOwner(psid string) string {
	var st struct {
		Threads []struct {
			PSID  string  `json:"psid"`
			Owner *string `json:"owner_app_id"`
		} `json:"threads"`
	}
	if err := emulatorDo(context.Background(), http.DefaultClient, http.MethodGet, s.emu0()+"/_emulator/state", nil, &st); err != nil {
		s.t.Fatal(err)
	}
	for _, th := range st.Threads {
		if th.PSID == psid && th.Owner != nil {
			return *th.Owner
		}
	}
	return ""
}

func (s *testStack) handoverKinds(id int64) []*baton.Handover {
	hos, err := s.inst.db.Handovers(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return hos
}

func (s *testStack) auditRows(action string, id int64) int {
	var n int
	if err := s.inst.db.GetContext(context.Background(), &n,
		`select count(*) from audit_log where action = $1 and subject = $2`, action, "conversation:"+strconv.FormatInt(id, 10)); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// Idle auto-return: no agent reply for BATON_IDLE_RETURN hands the thread
// back to the bot with outcome "idle"; the console is warned first.
func TestIdleAutoReturn(t *testing.T) {
	s := bootStack(t, Env{"BATON_IDLE_RETURN": "30m"})
	ctx := context.Background()
	psid, c := s.handedOver("Iris")
	timers := s.inst.cons.timers

	if w, err := timers.Warning(ctx, c.ID); err != nil || w.Warn || w.At.IsZero() {
		t.Fatalf("warning right after the handover: %+v %v", w, err)
	}
	s.advance(25 * time.Minute)
	w, err := timers.Warning(ctx, c.ID)
	if err != nil || !w.Warn || !strings.Contains(w.Text, "Returns to the bot in") {
		t.Fatalf("no warning 5 min before: %+v %v", w, err)
	}
	s.inst.cons.WakeTimers()
	if c := s.conversationOf(psid); c.Status != baton.StatusOpen || c.Closing {
		t.Fatalf("returned early: %+v", c)
	}

	s.advance(6 * time.Minute)
	s.inst.cons.WakeTimers()
	waitFor(t, "the idle return", func() bool {
		c := s.conversationOf(psid)
		return c.Status == baton.StatusClosed && c.CloseReason == baton.CloseIdle
	})
	if got := s.emulatorOwner(psid); got != demoBotAppID {
		t.Errorf("emulator owner = %q, want the bot", got)
	}
	var ret *baton.Handover
	for _, h := range s.handoverKinds(c.ID) {
		if h.Kind == "idle_return" {
			ret = h
		}
	}
	if ret == nil {
		t.Fatal("no idle_return in the timeline")
	}
	var md conversation.DoneMetadata
	if err := json.Unmarshal([]byte(ret.Metadata), &md); err != nil || md.V != 1 || md.Outcome != "idle" || md.ConversationID != conversation.ConversationRef(c.ID) {
		t.Errorf("metadata %s (%v)", ret.Metadata, err)
	}
	if n := s.auditRows("handover.idle_return", c.ID); n != 1 {
		t.Errorf("%d audit rows", n)
	}
}

// An agent reply restarts the idle clock.
func TestIdleReturnWaitsForAgentReply(t *testing.T) {
	s := bootStack(t, Env{"BATON_IDLE_RETURN": "30m"})
	ctx := context.Background()
	psid, c := s.handedOver("Ivo")
	s.advance(20 * time.Minute)
	if _, err := s.inst.cons.web.Service.Reply(ctx, s.admin, c.ID, "Looking into it now.", "", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reply on Messenger", func() bool { return s.pageSays(psid, demoBatonAppID, "Looking into it") })
	s.advance(15 * time.Minute) // 35 min after the handover, 15 after the reply
	if err := s.inst.cons.timers.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if c := s.conversationOf(psid); c.Status != baton.StatusOpen || c.Closing {
		t.Fatalf("returned despite a recent reply: %+v", c)
	}
	s.advance(16 * time.Minute)
	if err := s.inst.cons.timers.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle return", func() bool { return s.conversationOf(psid).CloseReason == baton.CloseIdle })
}

// The bot takes the thread back while Baton's webhooks are lost; the
// person's next message arrives on standby, which puts the owner in doubt,
// and thread_owner settles it: the conversation closes as passed. (The
// demo bot's take-back timer runs on the real clock: 3 s of silence.)
func TestOwnerUnsureResolvedByThreadOwner(t *testing.T) {
	s := bootStack(t, Env{"DEMO_BOT_TAKE_BACK_AFTER": "3s"})
	psid, c := s.handedOver("Otto")
	s.faults(map[string]any{"webhook_drop_rate": 1})
	waitFor(t, "the bot taking back", func() bool { return s.emulatorOwner(psid) == demoBotAppID })
	s.faults(map[string]any{"webhook_drop_rate": 0})
	if c := s.conversationOf(psid); c.Status != baton.StatusOpen {
		t.Fatalf("Baton heard of the take: %+v", c)
	}

	s.say(psid, "hello? anyone there?")
	waitFor(t, "the owner settled", func() bool {
		c := s.conversationOf(psid)
		return c.Status == baton.StatusClosed && !c.OwnerUnsure
	})
	c = s.conversationOf(psid)
	if c.CloseReason != baton.ClosePassed || c.OwnerAppID != demoBotAppID {
		t.Errorf("closed as %q, owner %q", c.CloseReason, c.OwnerAppID)
	}
	var inferred *baton.Handover
	for _, h := range s.handoverKinds(c.ID) {
		if h.Kind == "inferred" {
			inferred = h
		}
	}
	if inferred == nil || inferred.FromAppID != demoBatonAppID || inferred.ToAppID != demoBotAppID {
		t.Errorf("inferred handover = %+v", inferred)
	}
	if n := s.auditRows("handover.inferred", c.ID); n != 1 {
		t.Errorf("%d audit rows", n)
	}
}

// A thread an agent is working is extended before the 24 h expiry, so it
// is still Baton's a day later; the expiry check agrees.
func TestExtendKeepsWorkedThread(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	psid, c := s.handedOver("Elsa")
	s.advance(23*time.Hour + 20*time.Minute)
	if _, err := s.inst.cons.web.Service.Reply(ctx, s.admin, c.ID, "Still on it, sorry for the wait.", "", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reply on Messenger", func() bool { return s.pageSays(psid, demoBatonAppID, "Still on it") })
	s.advance(20 * time.Minute)
	if err := s.inst.cons.timers.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.auditRows("handover.extend", c.ID); n != 1 {
		t.Fatalf("%d extend audit rows", n)
	}
	s.advance(2 * time.Hour)
	if err := s.inst.cons.timers.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.emulatorOwner(psid); got != demoBatonAppID {
		t.Errorf("emulator owner after 25 h = %q, want Baton", got)
	}
	if c := s.conversationOf(psid); c.Status != baton.StatusOpen {
		t.Errorf("conversation %s (%s)", c.Status, c.CloseReason)
	}
}

// Without an extend, the expiry check finds the thread idle after 24 h and
// closes the conversation as expired.
func TestExtendNotDoneExpiryCloses(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	psid, c := s.handedOver("Emil")
	s.advance(24*time.Hour + time.Minute)
	if err := s.inst.cons.timers.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	c = s.conversationOf(psid)
	if c.Status != baton.StatusClosed || c.CloseReason != baton.CloseExpired || c.OwnerAppID != "" {
		t.Errorf("after 24 h: status %s reason %q owner %q", c.Status, c.CloseReason, c.OwnerAppID)
	}
}

// getPage fetches a console page with the session cookie.
func getPage(t *testing.T, u string, ck *http.Cookie) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.AddCookie(ck)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The live watch lists bot-owned threads with their escalation signals,
// strongest first, and requests control in one click; a request the bot
// ignores is flagged after the timeout.
func TestWatchBotOwnedSignalsAndRequest(t *testing.T) {
	s := bootStack(t, nil)
	calm := s.newPerson("Carl", "Calm")
	s.say(calm, "hi")
	waitFor(t, "Carl's greeting", func() bool { return s.pageSays(calm, demoBotAppID, "Hi Carl") })
	upset := s.newPerson("Ulla", "Upset")
	s.say(upset, "hi")
	waitFor(t, "Ulla's greeting", func() bool { return s.pageSays(upset, demoBotAppID, "Hi Ulla") })
	// Two fallbacks in a row would make the bot hand over: one answer
	// in between keeps the thread with the bot.
	s.say(upset, "blorp")
	waitFor(t, "the first fallback", func() bool { return s.pageSays(upset, demoBotAppID, "didn't quite get") })
	s.say(upset, "opening hours?")
	waitFor(t, "the opening hours", func() bool { return s.pageSays(upset, demoBotAppID, "Monday to Saturday") })
	s.say(upset, "this is ridiculous, zzzz")
	waitFor(t, "two fallbacks", func() bool {
		n := 0
		for _, m := range s.personSees(upset) {
			if strings.Contains(m.Text, "didn't quite get") {
				n++
			}
		}
		return n >= 2
	})
	waitFor(t, "Ulla's history in Baton", func() bool {
		c := s.conversationOf(upset)
		if c == nil {
			return false
		}
		ms, _ := s.inst.db.Messages(context.Background(), c.ID, 0, 50)
		return len(ms) >= 6
	})

	addr := strings.TrimPrefix(s.ConsoleURL, "http://")
	ck := rtSignIn(t, addr, "admin@example.test", "correct horse battery")
	status, body := getPage(t, s.ConsoleURL+"/watch", ck)
	if status != 200 {
		t.Fatalf("GET /watch: %d", status)
	}
	for _, want := range []string{"Ulla Upset", "Carl Calm", "Bot fallback", "Angry words", `href="/watch"`, "watch."} {
		if !strings.Contains(body, want) {
			t.Errorf("watch page lacks %q", want)
		}
	}
	if iu, ic := strings.Index(body, "Ulla Upset"), strings.Index(body, "Carl Calm"); iu > ic {
		t.Error("the upset person is not listed first")
	}

	// Request control from the watch, with the bot ignoring requests.
	s.faults(map[string]any{"ignore_thread_requests": true})
	token := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(body)
	if token == nil {
		t.Fatal("no CSRF token")
	}
	c := s.conversationOf(upset)
	form := url.Values{"reason": {"Angry words: this is ridiculous"}, "csrf_token": {token[1]}}
	req, _ := http.NewRequest(http.MethodPost, s.ConsoleURL+"/conversations/"+strconv.FormatInt(c.ID, 10)+"/request", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Requested-With", "fetch")
	req.Header.Set("X-CSRF-Token", token[1])
	req.Header.Set("Origin", s.ConsoleURL)
	req.AddCookie(ck)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("request control: %d %s", resp.StatusCode, rb)
	}
	_, frag := getPage(t, s.ConsoleURL+"/watch?fragment=list", ck)
	if !strings.Contains(frag, `data-testid="watch-requested"`) || strings.Contains(frag, "<html") {
		t.Errorf("fragment after the request:\n%s", frag)
	}
	s.advance(6 * time.Minute)
	_, frag = getPage(t, s.ConsoleURL+"/watch?fragment=list", ck)
	if !strings.Contains(frag, `data-testid="watch-ignored"`) || !strings.Contains(frag, "Request ignored") {
		t.Errorf("no ignored flag after the timeout:\n%s", frag)
	}
}
