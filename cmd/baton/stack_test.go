package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/pgtest"
)

// testClock is a clock tests move forward together with the emulator's.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// testStack is the whole program booted on loopback ports: the emulator
// with its demo bot, and Baton with a fresh database.
type testStack struct {
	*demoStack
	t     *testing.T
	clock *testClock
	admin *baton.User
}

// logWriter sends the program's warnings to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func bootStack(t *testing.T, extraEnv Env) *testStack {
	t.Helper()
	env := Env{
		"DATABASE_URL": pgtest.DSN(t), "BATON_ADDR": "127.0.0.1:0",
		"BATON_ADMIN_EMAIL": "admin@example.test", "BATON_ADMIN_PASSWORD": "correct horse battery",
		"BATON_PASSWORD_COST": "4",
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	c, err := loadConfig(env, false)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	c.Now = clock.Now
	log := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	id := &demoIdentity{AppSecret: "test-secret-" + t.Name(), VerifyToken: "test-verify"}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := startDemoStack(ctx, c, env, "127.0.0.1:0", "", id, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); st.Close() })
	ts := &testStack{demoStack: st, t: t, clock: clock}
	users, err := st.inst.db.Users(ctx)
	if err != nil || len(users) == 0 {
		t.Fatalf("no users: %v", err)
	}
	for _, u := range users {
		if u.Role == baton.RoleAdmin {
			ts.admin = u
		}
	}
	return ts
}

// emu calls the emulator's control API.
func (s *testStack) emu(path string, body, out any) {
	s.t.Helper()
	if err := emulatorCall(context.Background(), s.emu0()+path, body, out); err != nil {
		s.t.Fatal(err)
	}
}

func (s *testStack) emu0() string { return s.demoStack.emu.URL }

// advance moves the emulator's and Baton's clocks together.
func (s *testStack) advance(d time.Duration) {
	s.t.Helper()
	s.emu("/_emulator/clock", map[string]any{"advance_seconds": int(d.Seconds())}, nil)
	s.clock.mu.Lock()
	s.clock.off += d
	s.clock.mu.Unlock()
}

func (s *testStack) faults(f map[string]any) {
	s.t.Helper()
	if err := emulatorDo(context.Background(), http.DefaultClient, http.MethodPut, s.emu0()+"/_emulator/faults", f, nil); err != nil {
		s.t.Fatal(err)
	}
}

func (s *testStack) newPerson(first, last string) string {
	var u struct {
		PSID string `json:"psid"`
	}
	s.emu("/_emulator/users", map[string]any{"first_name": first, "last_name": last}, &u)
	return u.PSID
}

func (s *testStack) say(psid, text string) {
	s.emu("/_emulator/users/"+psid+"/messages", map[string]any{"text": text}, nil)
}

// personSees is what the person sees on Messenger.
type seenMessage struct {
	From  string  `json:"from"`
	AppID *string `json:"app_id"`
	Text  string  `json:"text"`
}

func (s *testStack) personSees(psid string) []seenMessage {
	resp, err := http.Get(s.emu0() + "/_emulator/users/" + psid + "/conversation")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Messages []seenMessage `json:"messages"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		s.t.Fatalf("conversation: %v: %s", err, b)
	}
	return out.Messages
}

// waitFor polls cond until it holds; the deadline only stops a broken run
// from hanging, it says nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// conversationOf returns Baton's conversation for psid, or nil.
func (s *testStack) conversationOf(psid string) *baton.Conversation {
	all, err := s.inst.db.ListConversations(context.Background(), baton.ConversationFilter{Folder: baton.FolderAll, Search: psid})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, c := range all {
		if c.PSID == psid {
			return c
		}
	}
	return nil
}

func (s *testStack) pageSays(psid, appID, substr string) bool {
	for _, m := range s.personSees(psid) {
		if m.From == "page" && m.AppID != nil && *m.AppID == appID && strings.Contains(m.Text, substr) {
			return true
		}
	}
	return false
}

func describe(ms []seenMessage) string {
	var b strings.Builder
	for _, m := range ms {
		app := ""
		if m.AppID != nil {
			app = *m.AppID
		}
		fmt.Fprintf(&b, "%s(%s): %s\n", m.From, app, m.Text)
	}
	return b.String()
}
