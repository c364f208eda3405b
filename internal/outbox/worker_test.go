package outbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/emulator"
	"github.com/baton-chat/baton/internal/graph"
	"github.com/baton-chat/baton/internal/outbox"
	"github.com/baton-chat/baton/internal/pgtest"
	"github.com/baton-chat/baton/internal/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const batonApp = "2500000002"

// fixture is a real emulator over HTTP with Baton's app registered, a
// person who wrote, and Baton's database knowing the conversation.
type fixture struct {
	t      *testing.T
	db     *postgres.DB
	emuURL string
	psid   string
	convID int64
	worker *outbox.Worker
}

func post(t *testing.T, url string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s: %d %s", url, resp.StatusCode, raw)
	}
	if out != nil {
		json.Unmarshal(raw, out)
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	emu, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { srv.Close(); emu.Close() })
	// Baton's webhook: answers the challenge, acknowledges deliveries.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Query().Get("hub.challenge"))
	}))
	t.Cleanup(hook.Close)
	var reg struct {
		Token string `json:"page_access_token"`
	}
	post(t, srv.URL+"/_emulator/apps", map[string]any{"id": batonApp, "name": "Baton", "secret": "s3cret",
		"verify_token": "v", "webhook_url": hook.URL, "role": "secondary_receiver", "human_agent": true}, &reg)
	var u struct {
		PSID string `json:"psid"`
	}
	post(t, srv.URL+"/_emulator/users", map[string]any{"first_name": "Peter", "last_name": "Chang"}, &u)
	post(t, srv.URL+"/_emulator/users/"+u.PSID+"/messages", map[string]any{"text": "hello?"}, nil)

	db := pgtest.DB(t)
	ctx := context.Background()
	if err := db.EnsurePage(ctx, baton.Page{PageID: emu.PageID(), BatonAppID: batonApp}); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := db.GetContext(ctx, &id, `
		insert into conversations (page_id, psid, status, owner_app_id, last_user_event_ms)
		values ($1, $2, 'open', $3, $4) returning id`, emu.PageID(), u.PSID, batonApp, time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	client := &graph.Client{BaseURL: srv.URL + "/v25.0", PageToken: reg.Token, AppSecret: "s3cret"}
	return &fixture{t: t, db: db, emuURL: srv.URL, psid: u.PSID, convID: id,
		worker: &outbox.Worker{Store: db, Graph: client, HumanAgent: func() bool { return true }}}
}

func (f *fixture) enqueue(text string) *baton.OutboxItem {
	f.t.Helper()
	it := &baton.OutboxItem{Kind: "message", Text: text}
	if err := f.db.Enqueue(context.Background(), f.convID, it, func(*baton.Conversation) error { return nil }); err != nil {
		f.t.Fatal(err)
	}
	return it
}

func (f *fixture) status(id int64) (status string, attempts int) {
	f.t.Helper()
	if err := f.db.QueryRowContext(context.Background(), `select status, attempts from outbox where id = $1`, id).Scan(&status, &attempts); err != nil {
		f.t.Fatal(err)
	}
	return
}

// personReceived counts the page messages with text the person got.
func (f *fixture) personReceived(text string) int {
	f.t.Helper()
	resp, err := http.Get(f.emuURL + "/_emulator/users/" + f.psid + "/conversation")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var conv struct {
		Messages []struct {
			From, Text string
		} `json:"messages"`
	}
	json.NewDecoder(resp.Body).Decode(&conv)
	n := 0
	for _, m := range conv.Messages {
		if m.From == "page" && m.Text == text {
			n++
		}
	}
	return n
}

// A queued reply is sent once, stored as the agent's message with the
// Send API's message id, and the outbox entry is marked sent.
func TestWorkerSendsOnce(t *testing.T) {
	f := newFixture(t)
	it := f.enqueue("Hi Peter, Ana here.")
	if n, err := f.worker.RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	if st, _ := f.status(it.ID); st != baton.OutboxSent {
		t.Fatalf("status = %s", st)
	}
	if n := f.personReceived("Hi Peter, Ana here."); n != 1 {
		t.Fatalf("the person got it %d times", n)
	}
	var mid string
	var outboxID int64
	if err := f.db.QueryRowContext(context.Background(), `select mid, outbox_id from messages where conversation_id = $1 and author = 'agent'`, f.convID).Scan(&mid, &outboxID); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mid, "m_") || outboxID != it.ID {
		t.Fatalf("stored message mid=%q outbox=%d", mid, outboxID)
	}
	// Nothing is left to claim: it is not sent again.
	if n, _ := f.worker.RunOnce(context.Background()); n != 0 {
		t.Fatalf("claimed %d more", n)
	}
}

// Killed mid-send: an entry left "sending" is taken over when its lease
// runs out. If its echo arrived meanwhile, it did go out: it is marked
// sent without a second send. If not, it is sent again.
func TestWorkerRecoversAfterCrash(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	went := f.enqueue("This one went out before the crash.")
	lost := f.enqueue("This one never left.")
	// The crashed worker's claims: sending, lease expired. The first one's
	// echo (metadata baton:<id>) was ingested.
	if _, err := f.db.ExecContext(ctx, `update outbox set status = 'sending', attempts = 1, next_attempt_at = now() - interval '1 s' where id in ($1, $2)`, went.ID, lost.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.ExecContext(ctx, `
		insert into messages (conversation_id, mid, author, app_id, text, part, timestamp_ms, outbox_id)
		values ($1, 'm_echo_of_went', 'agent', $2, $3, 'live', 1, $4)`, f.convID, batonApp, went.Text, went.ID); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := f.worker.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := f.status(went.ID); st != baton.OutboxSent {
		t.Errorf("echoed entry: %s, want sent", st)
	}
	if n := f.personReceived(went.Text); n != 0 {
		t.Errorf("echoed entry sent again (%d)", n)
	}
	if st, n := f.status(lost.ID); st != baton.OutboxSent || n != 2 {
		t.Errorf("lost entry: %s after %d attempts, want sent on the 2nd", st, n)
	}
	if n := f.personReceived(lost.Text); n != 1 {
		t.Errorf("lost entry received %d times, want 1", n)
	}
}

// An entry another worker holds (lease not run out) is left alone.
func TestWorkerSkipsLeasedEntries(t *testing.T) {
	f := newFixture(t)
	it := f.enqueue("held elsewhere")
	if _, err := f.db.ExecContext(context.Background(), `update outbox set status = 'sending', attempts = 1, next_attempt_at = now() + interval '1 min' where id = $1`, it.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.worker.RunOnce(context.Background()); n != 0 {
		t.Fatalf("claimed %d leased entries", n)
	}
}

// A permanent error marks the entry failed with Facebook's reason in
// plain words; a transient one schedules a retry.
func TestWorkerClassifiesErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	put := func(faults string) {
		req, _ := http.NewRequest(http.MethodPut, f.emuURL+"/_emulator/faults", strings.NewReader(faults))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	put(`{"graph_down":true}`)
	it := f.enqueue("during the outage")
	f.worker.RunOnce(ctx)
	if st, n := f.status(it.ID); st != baton.OutboxPending || n != 1 {
		t.Fatalf("after a transient error: %s/%d, want pending for a retry", st, n)
	}
	put(`{"graph_down":false}`)
	// Past the 24 h window (and 7 days: no Human Agent here).
	f.worker.HumanAgent = func() bool { return false }
	if _, err := f.db.ExecContext(ctx, `update conversations set last_user_event_ms = $2 where id = $1`, f.convID, time.Now().Add(-25*time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	late := f.enqueue("too late")
	if _, err := f.db.ExecContext(ctx, `update outbox set next_attempt_at = now() where id = $1`, it.ID); err != nil {
		t.Fatal(err)
	}
	// The earlier entry goes first (order per conversation), then this one.
	f.worker.RunOnce(ctx)
	f.worker.RunOnce(ctx)
	var reason string
	f.db.QueryRowContext(ctx, `select last_error from outbox where id = $1`, late.ID).Scan(&reason)
	if st, _ := f.status(late.ID); st != baton.OutboxFailed || !strings.Contains(reason, "window closed") {
		t.Fatalf("outside the window: %s (%q), want failed with the window's reason", st, reason)
	}
	if n := f.personReceived("too late"); n != 0 {
		t.Fatal("sent outside the window")
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempts int
		min, max time.Duration
	}{
		{1, 750 * time.Millisecond, time.Second},
		{2, 1500 * time.Millisecond, 2 * time.Second},
		{4, 6 * time.Second, 8 * time.Second},
		{7, 45 * time.Second, 60 * time.Second},
		{30, 45 * time.Second, 60 * time.Second},
	} {
		for i := 0; i < 20; i++ {
			if d := outbox.Backoff(tc.attempts); d < tc.min || d > tc.max {
				t.Errorf("Backoff(%d) = %v, want in [%v, %v]", tc.attempts, d, tc.min, tc.max)
			}
		}
	}
}
