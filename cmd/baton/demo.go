package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/account"
	"github.com/baton-chat/baton/internal/baton"
)

// Demo identities: PROTOCOL.md's example ids, so logs read like the docs.
const (
	demoBatonAppID = "2500000002"
	demoPassword   = "baton-demo"
)

// demoIdentity is kept in BATON_DATA so that a second run reuses the same
// app secret and verify token (and so the same data).
type demoIdentity struct {
	AppSecret   string `json:"app_secret"`
	VerifyToken string `json:"verify_token"`
}

// runDemo starts everything on one machine: the private PostgreSQL, the
// emulator with its demo bot (Primary), and Baton (Secondary), wired to
// each other, with a few people and agents to try it with.
func runDemo(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	e := Env{}
	for k, v := range env {
		e[k] = v
	}
	e["BATON_ADDR"] = or(env["BATON_ADDR"], ":8080")
	e["BATON_LOG_FORMAT"] = or(env["BATON_LOG_FORMAT"], "text")
	e["BATON_LOG_LEVEL"] = or(env["BATON_LOG_LEVEL"], "warn")
	if e["BATON_ADMIN_EMAIL"] == "" {
		e["BATON_ADMIN_EMAIL"], e["BATON_ADMIN_PASSWORD"] = "admin@baton.local", demoPassword
	}
	c, err := loadConfig(e, false)
	if err != nil {
		fmt.Fprintf(stderr, "baton demo: configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(c, stderr)
	if err := os.MkdirAll(c.Data, 0o755); err != nil {
		fmt.Fprintf(stderr, "baton demo: %v\n", err)
		return 1
	}
	id, err := loadDemoIdentity(filepath.Join(c.Data, "demo.json"))
	if err != nil {
		fmt.Fprintf(stderr, "baton demo: %v\n", err)
		return 1
	}

	st, err := startDemoStack(ctx, c, env, or(env["EMULATOR_ADDR"], ":8090"), filepath.Join(c.Data, "emulator.json"), id, log)
	if err != nil {
		fmt.Fprintf(stderr, "baton demo: %v\n", err)
		return 1
	}
	defer st.Close()
	emu, consoleURL := st.emu, st.ConsoleURL
	if err := seedDemoAgents(ctx, st.inst.acct.service); err != nil {
		fmt.Fprintf(stderr, "baton demo: %v\n", err)
		return 1
	}
	people, err := seedDemoPeople(ctx, st.inst, emu.URL)
	if err != nil {
		fmt.Fprintf(stderr, "baton demo: seed people: %v\n", err)
		return 1
	}

	fmt.Fprintf(stdout, `
Baton demo is running.

  Agent console:      %s/
      sign in as      %s / %s   (admin)
                      sam@baton.local / %s   (supervisor)
                      ana@baton.local / %s   (agent)
  Chat as a person:   %s/   (%d people; or create one)
  Emulator state:     %s/_emulator/state

Write "talk to a human" on the chat page and the bot hands the thread to Baton.
Data lives in %s; Ctrl-C stops everything.
`, consoleURL, c.AdminEmail, c.AdminPassword, demoPassword, demoPassword, emu.URL, people, emu.URL, c.Data)
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping…")
	return 0
}

func loadDemoIdentity(path string) (*demoIdentity, error) {
	var id demoIdentity
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &id) == nil && id.AppSecret != "" {
		return &id, nil
	}
	id = demoIdentity{AppSecret: randomHex(16), VerifyToken: randomHex(12)}
	b, _ := json.MarshalIndent(id, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("save demo identity: %w", err)
	}
	return &id, nil
}

// demoStack is the emulator with its bot and a Baton registered with it as
// the Secondary Receiver: what `baton demo` runs and what the end-to-end
// tests boot.
type demoStack struct {
	emu        *runningEmulator
	inst       *instance
	ConsoleURL string
}

// startDemoStack starts the emulator (and demo bot) on emuAddr and Baton on
// c.Addr, registers Baton's app with the emulator (which verifies its
// webhook, as Facebook does) and stores the page token it answers.
func startDemoStack(ctx context.Context, c Config, env Env, emuAddr, emuState string, id *demoIdentity, log *slog.Logger) (*demoStack, error) {
	emu, err := startEmulator(ctx, env, emuAddr, true, emuState, log)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	c.PageID, c.AppID = emu.emu.PageID(), demoBatonAppID
	c.AppSecret, c.VerifyToken = id.AppSecret, id.VerifyToken
	c.GraphAPIURL = emu.URL + "/v25.0"
	c.HumanAgent = true
	c.PageToken = "registered-below" // the emulator answers the real one on registration
	inst, err := startInstance(ctx, c, log)
	if err != nil {
		emu.Close()
		return nil, err
	}
	st := &demoStack{emu: emu, inst: inst, ConsoleURL: "http://" + loopbackURLHost(inst.ln.Addr())}
	fail := func(err error) (*demoStack, error) {
		st.Close()
		return nil, err
	}
	token, err := registerApp(ctx, emu.URL, map[string]any{
		"id": demoBatonAppID, "name": "Baton", "secret": id.AppSecret, "verify_token": id.VerifyToken,
		"webhook_url": st.ConsoleURL + "/webhook", "role": "secondary_receiver", "human_agent": true,
	})
	if err != nil {
		return fail(fmt.Errorf("register Baton with the emulator: %w", err))
	}
	s, err := inst.acct.settings.PageSettings(ctx)
	if err != nil {
		return fail(err)
	}
	s.PageToken, s.AppSecret, s.VerifyToken, s.BatonAppID, s.HumanAgent = token, id.AppSecret, id.VerifyToken, demoBatonAppID, true
	if err := inst.acct.settings.SavePageSettings(ctx, *s); err != nil {
		return fail(fmt.Errorf("save page settings: %w", err))
	}
	return st, nil
}

// Close stops Baton, then the emulator.
func (st *demoStack) Close() {
	st.inst.Shutdown()
	st.emu.Close()
}

// registerApp registers an app with the emulator (which verifies its
// webhook first) and returns its page access token.
func registerApp(ctx context.Context, emulatorURL string, app map[string]any) (string, error) {
	var out struct {
		Token string `json:"page_access_token"`
	}
	if err := emulatorCall(ctx, emulatorURL+"/_emulator/apps", app, &out); err != nil {
		return "", err
	}
	return out.Token, nil
}

// emulatorCall POSTs body to the emulator's control API.
func emulatorCall(ctx context.Context, url string, body, out any) error {
	return emulatorDo(ctx, http.DefaultClient, http.MethodPost, url, body, out)
}

// emulatorDo calls the emulator's control API: body (nil: none) as JSON,
// the answer decoded into out (nil: ignored); any status from 300 up is
// an error carrying the emulator's message.
func emulatorDo(ctx context.Context, client *http.Client, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body) // the delivery log of a long run is megabytes
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// seedDemoAgents adds a supervisor and an agent on first run.
func seedDemoAgents(ctx context.Context, svc *account.Service) error {
	for _, u := range []account.NewUser{
		{Email: "sam@baton.local", Name: "Sam Carter", Role: baton.RoleSupervisor, Password: demoPassword},
		{Email: "ana@baton.local", Name: "Ana Lopez", Role: baton.RoleAgent, Password: demoPassword},
	} {
		if _, err := svc.CreateUser(ctx, nil, u); err != nil && baton.ErrorCode(err) != baton.ECONFLICT {
			return fmt.Errorf("add demo user %s: %w", u.Email, err)
		}
	}
	return nil
}

// demoScript is what each seeded person says, in order; the bot answers
// each line, and "talk to a human" hands the thread to Baton.
var demoScript = []struct {
	first, last string
	lines       []string
}{
	{"Maria", "Garcia", []string{"hi", "where is my order?", "it's been 10 days, I want to talk to a human"}},
	{"James", "Wilson", []string{"hello", "what are your opening hours?", "thanks!"}},
	{"Aiko", "Tanaka", []string{"hi there", "I was charged twice, I need a refund", "agent please"}},
}

// seedDemoPeople, on the first run, plays a few realistic conversations
// through the real flow. On later runs the emulator restores its people
// from its state file; if that file was lost, it is told the people
// Baton knows, so that replies reach someone. It returns how many people
// there are.
func seedDemoPeople(ctx context.Context, inst *instance, emulatorURL string) (int, error) {
	var state struct {
		Users []json.RawMessage `json:"users"`
	}
	if err := emulatorDo(ctx, http.DefaultClient, http.MethodGet, emulatorURL+"/_emulator/state", nil, &state); err != nil {
		return 0, err
	}
	if len(state.Users) > 0 {
		return len(state.Users), nil
	}
	known, err := inst.db.ListConversations(ctx, baton.ConversationFilter{Folder: baton.FolderAll, Limit: 500})
	if err != nil {
		return 0, err
	}
	if len(known) > 0 {
		for _, c := range known {
			body := map[string]any{"psid": c.PSID, "first_name": c.FirstName, "last_name": c.LastName}
			if err := emulatorCall(ctx, emulatorURL+"/_emulator/users", body, nil); err != nil {
				return 0, err
			}
		}
		return len(known), nil
	}
	for _, p := range demoScript {
		var u struct {
			PSID string `json:"psid"`
		}
		if err := emulatorCall(ctx, emulatorURL+"/_emulator/users", map[string]any{"first_name": p.first, "last_name": p.last}, &u); err != nil {
			return 0, err
		}
		for _, line := range p.lines {
			if err := emulatorCall(ctx, emulatorURL+"/_emulator/users/"+u.PSID+"/messages", map[string]any{"text": line}, nil); err != nil {
				return 0, err
			}
			// Let the bot answer before the next line, as a person would.
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(400 * time.Millisecond):
			}
		}
	}
	return len(demoScript), nil
}
