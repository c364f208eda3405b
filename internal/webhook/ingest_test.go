package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/messenger"
	"github.com/baton-chat/baton/internal/pgtest"
	"github.com/baton-chat/baton/internal/postgres"
	"github.com/baton-chat/baton/internal/webhook"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const (
	pageID  = "100200300"
	psid    = "700800900"
	botApp  = "1500000001"
	batonID = "2500000002"
	secret  = "app-secret"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// setup returns a fresh database with the Page connected and a started
// ingester on it, closed when the test ends.
func setup(t *testing.T, cfg webhook.Config) (*postgres.DB, *webhook.Ingester) {
	t.Helper()
	db := pgtest.DB(t)
	if err := db.EnsurePage(context.Background(), baton.Page{PageID: pageID, BatonAppID: batonID, PrimaryAppID: botApp}); err != nil {
		t.Fatal(err)
	}
	cfg.AppSecret = secret
	cfg.Now = func() time.Time { return now }
	in := webhook.New(db, cfg)
	in.Start()
	t.Cleanup(in.Close)
	return db, in
}

// Wire builders (PROTOCOL.md §4.1, §5).

func body(entries ...string) []byte {
	return []byte(`{"object":"page","entry":[` + strings.Join(entries, ",") + `]}`)
}

func entry(page string, messaging []string, standby ...string) string {
	s := fmt.Sprintf(`{"id":%q,"time":1,"messaging":[%s]`, page, strings.Join(messaging, ","))
	if len(standby) > 0 {
		s += `,"standby":[` + strings.Join(standby, ",") + `]`
	}
	return s + "}"
}

func one(events ...string) []byte { return body(entry(pageID, events)) }

func standby(events ...string) []byte { return body(entry(pageID, nil, events...)) }

func userMsg(who string, ts int64, mid, text string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"text":%q}}`, who, pageID, ts, mid, text)
}

func echo(who string, ts int64, mid, app, meta string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"is_echo":true,"app_id":%s,"metadata":%q,"mid":%q,"text":"echo"}}`, pageID, who, ts, app, meta, mid)
}

func pass(who string, ts int64, prev, next, meta string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"pass_thread_control":{"previous_owner_app_id":%s,"new_owner_app_id":%s,"metadata":%q}}`, who, pageID, ts, prev, next, meta)
}

func take(who string, ts int64, prev, next string) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"take_thread_control":{"previous_owner_app_id":%s,"new_owner_app_id":%s}}`, who, pageID, ts, prev, next)
}

func read(who string, ts, wm int64) string {
	return fmt.Sprintf(`{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"read":{"watermark":%d}}`, who, pageID, ts, wm)
}

func submit(t *testing.T, in *webhook.Ingester, b []byte) {
	t.Helper()
	if err := in.Submit(context.Background(), b); err != nil {
		t.Fatalf("Submit(%.80s): %v", b, err)
	}
}

// Reading back.

type convRow struct {
	Status      string `db:"status"`
	CloseReason string `db:"close_reason"`
	Owner       string `db:"owner_app_id"`
	OwnerTS     int64  `db:"owner_ts"`
	Unsure      bool   `db:"owner_unsure"`
	Unread      int    `db:"unread"`
	Meta        string `db:"handover_metadata"`
	LastUser    int64  `db:"last_user_event_ms"`
	ReadWM      int64  `db:"read_watermark"`
	Seq         int64  `db:"seq"`
}

func conv(t *testing.T, db *postgres.DB, who string) convRow {
	t.Helper()
	var c convRow
	if err := db.Get(&c, `
		select
			status,
			close_reason,
			owner_app_id,
			owner_ts,
			owner_unsure,
			unread,
			handover_metadata,
			last_user_event_ms,
			read_watermark,
			seq
		from conversations
		where page_id = $1 and psid = $2`, pageID, who); err != nil {
		t.Fatalf("conversation %s: %v", who, err)
	}
	return c
}

func count(t *testing.T, db *postgres.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Get(&n, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// counts is what duplicates must not change.
type counts struct{ deliveries, events, messages, handovers, conversations, unread int }

func countAll(t *testing.T, db *postgres.DB) counts {
	t.Helper()
	return counts{
		deliveries:    count(t, db, `select count(*) from deliveries`),
		events:        count(t, db, `select count(*) from events`),
		messages:      count(t, db, `select count(*) from messages`),
		handovers:     count(t, db, `select count(*) from handovers`),
		conversations: count(t, db, `select count(*) from conversations`),
		unread:        count(t, db, `select coalesce(sum(unread), 0) from conversations`),
	}
}

// Duplicates, whether Meta retries a delivery or repeats an event inside
// one, add no message, unread count or handover (PROTOCOL.md §4.5, §16).
// Every POST is still stored raw.
func TestDuplicatesChangeNothing(t *testing.T) {
	open := one(pass(psid, 100, botApp, batonID, "help"))
	msgs := one(userMsg(psid, 200, "m_1", "one"), userMsg(psid, 201, "m_2", "two"), read(psid, 202, 150))
	tests := []struct {
		name   string
		bodies [][]byte
	}{
		{"retry of the same bytes", [][]byte{open, msgs, msgs, msgs}},
		{"handover retried", [][]byte{open, open, msgs, open}},
		{"same event twice in one delivery", [][]byte{open, one(userMsg(psid, 200, "m_1", "one"), userMsg(psid, 200, "m_1", "one"), userMsg(psid, 201, "m_2", "two"), read(psid, 202, 150))}},
		{"same events in other deliveries and encodings", [][]byte{open, msgs,
			body(entry(pageID, []string{userMsg(psid, 201, "m_2", "two")}), entry(pageID, []string{userMsg(psid, 200, "m_1", "one")})),
			[]byte(strings.Replace(string(msgs), `"timestamp":202`, `"timestamp":"202"`, 1)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, in := setup(t, webhook.Config{})
			for _, b := range tt.bodies {
				submit(t, in, b)
			}
			got := countAll(t, db)
			want := counts{deliveries: len(tt.bodies), events: 4, messages: 2, handovers: 1, conversations: 1, unread: 2}
			if got != want {
				t.Errorf("counts = %+v, want %+v", got, want)
			}
			c := conv(t, db, psid)
			if c.Status != "open" || c.Meta != "help" || c.ReadWM != 150 {
				t.Errorf("conversation = %+v", c)
			}
			if d := in.Stats.Duplicates.Load(); d == 0 {
				t.Error("no duplicate counted")
			}
		})
	}
}

// Deliveries may arrive in any order: ownership follows the handover
// timestamps, within one delivery and across deliveries (PROTOCOL.md §4.5).
func TestOutOfOrderHandovers(t *testing.T) {
	p300 := pass(psid, 300, botApp, batonID, "help")
	t200 := take(psid, 200, batonID, botApp)
	t400 := take(psid, 400, batonID, botApp)
	tests := []struct {
		name      string
		bodies    [][]byte
		status    string
		reason    string
		owner     string
		ownerTS   int64
		handovers []string // kinds in timestamp order
	}{
		{"take older than the applied pass changes nothing", [][]byte{one(p300), one(t200)},
			"open", "", batonID, 300, []string{"take_stale", "pass"}},
		{"newer take closes", [][]byte{one(p300), one(t200), one(t400)},
			"closed", "taken_back", botApp, 400, []string{"take_stale", "pass", "take"}},
		{"take delivered before the pass it follows", [][]byte{one(t400), one(p300)},
			"bot", "", botApp, 400, []string{"pass_stale", "take"}},
		{"one delivery listing them newest first", [][]byte{one(t400, p300)},
			"closed", "taken_back", botApp, 400, []string{"pass", "take"}},
		{"batched entries newest first", [][]byte{body(entry(pageID, []string{t400}), entry(pageID, []string{p300}))},
			"closed", "taken_back", botApp, 400, []string{"pass", "take"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, in := setup(t, webhook.Config{})
			for _, b := range tt.bodies {
				submit(t, in, b)
			}
			c := conv(t, db, psid)
			if c.Status != tt.status || c.CloseReason != tt.reason || c.Owner != tt.owner || c.OwnerTS != tt.ownerTS {
				t.Errorf("conversation = %+v; want %s %q owner %s at %d", c, tt.status, tt.reason, tt.owner, tt.ownerTS)
			}
			var kinds []string
			if err := db.Select(&kinds, `select kind from handovers order by timestamp_ms, id`); err != nil {
				t.Fatal(err)
			}
			if strings.Join(kinds, ",") != strings.Join(tt.handovers, ",") {
				t.Errorf("handovers = %v, want %v", kinds, tt.handovers)
			}
		})
	}
}

type msgRow struct {
	MID    string `db:"mid"`
	Author string `db:"author"`
	Part   string `db:"part"`
	Outbox *int64 `db:"outbox_id"`
}

func messages(t *testing.T, db *postgres.DB) []msgRow {
	t.Helper()
	var ms []msgRow
	if err := db.Select(&ms, `
		select
			mid,
			author,
			part,
			outbox_id
		from messages
		order by timestamp_ms, id`); err != nil {
		t.Fatal(err)
	}
	return ms
}

// The bot's conversation arrives on standby and is stored as its history;
// the pass opens the conversation for agents with the bot's metadata; the
// exchange after it is live (PROTOCOL.md §6, §16).
func TestStandbyHistoryThenPass(t *testing.T) {
	db, in := setup(t, webhook.Config{})
	submit(t, in, standby(userMsg(psid, 100, "m_u1", "hi")))
	submit(t, in, standby(echo(psid, 110, "m_b1", botApp, ""), userMsg(psid, 120, "m_u2", "human please")))
	c := conv(t, db, psid)
	if c.Status != "bot" || c.Unread != 0 || c.Owner != botApp || c.LastUser != 120 || c.Unsure {
		t.Fatalf("after standby: %+v", c)
	}
	submit(t, in, one(pass(psid, 130, botApp, batonID, `{"reason":"asked_for_human"}`)))
	c = conv(t, db, psid)
	if c.Status != "open" || c.Owner != batonID || c.Meta != `{"reason":"asked_for_human"}` || c.Unread != 0 {
		t.Fatalf("after pass: %+v", c)
	}
	submit(t, in, one(userMsg(psid, 140, "m_u3", "hello?")))
	submit(t, in, one(echo(psid, 150, "m_a1", batonID, "baton:7")))
	c = conv(t, db, psid)
	if c.Unread != 1 || c.LastUser != 140 || c.Unsure {
		t.Fatalf("after live exchange: %+v", c)
	}
	seven := int64(7)
	want := []msgRow{
		{"m_u1", "user", "bot", nil},
		{"m_b1", "bot", "bot", nil},
		{"m_u2", "user", "bot", nil},
		{"m_u3", "user", "live", nil},
		{"m_a1", "agent", "live", &seven},
	}
	got := messages(t, db)
	if len(got) != len(want) {
		t.Fatalf("messages = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.MID != w.MID || g.Author != w.Author || g.Part != w.Part || (g.Outbox == nil) != (w.Outbox == nil) || (g.Outbox != nil && *g.Outbox != *w.Outbox) {
			t.Errorf("message %d = %+v, want %+v", i, g, w)
		}
	}
}

type deliveryRow struct {
	Status string `db:"status"`
	Note   string `db:"note"`
	Body   []byte `db:"body"`
}

func deliveries(t *testing.T, db *postgres.DB) []deliveryRow {
	t.Helper()
	var ds []deliveryRow
	if err := db.Select(&ds, `
		select
			status,
			note,
			body
		from deliveries
		order by id`); err != nil {
		t.Fatal(err)
	}
	return ds
}

// Unknown kinds, other objects and unknown Pages are stored and
// acknowledged, and nothing more (PROTOCOL.md §4.1, §5).
func TestUnknownStoredAndAcknowledged(t *testing.T) {
	edit := `{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":5,"message_edit":{"mid":"m_1","text":"x"}}`
	tests := []struct {
		name          string
		body          []byte
		status        string
		events        int
		eventKind     string
		conversations int
	}{
		{"unknown kind", one(edit), "ok", 1, "unknown", 0},
		{"optin", one(`{"recipient":{"id":"100200300"},"timestamp":6,"optin":{"ref":"x","user_ref":"u"}}`), "ok", 1, "optin", 0},
		{"chat plugin guest", one(`{"sender":{"user_ref":"guest"},"recipient":{"id":"100200300"},"timestamp":7,"message":{"mid":"m_g","text":"hi"}}`), "ok", 1, "message", 0},
		{"unknown page", body(entry("999", []string{userMsg(psid, 8, "m_x", "x")})), "ignored", 0, "", 0},
		{"other object", []byte(`{"object":"instagram","entry":[{"id":"100200300","messaging":[` + userMsg(psid, 9, "m_i", "x") + `]}]}`), "ignored", 0, "", 0},
		{"no events", body(entry(pageID, nil)), "ok", 0, "", 0},
		{"known and unknown pages", body(entry("999", []string{userMsg(psid, 8, "m_x", "x")}), entry(pageID, []string{userMsg(psid, 9, "m_y", "y")})), "ok", 1, "message", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, in := setup(t, webhook.Config{})
			submit(t, in, tt.body)
			ds := deliveries(t, db)
			if len(ds) != 1 || ds[0].Status != tt.status || string(ds[0].Body) != string(tt.body) {
				t.Fatalf("deliveries = %+v; want one %s copy of the body", ds, tt.status)
			}
			if tt.status == "ignored" && ds[0].Note == "" {
				t.Error("ignored delivery without a note")
			}
			if n := count(t, db, `select count(*) from events`); n != tt.events {
				t.Errorf("events = %d, want %d", n, tt.events)
			}
			if tt.eventKind != "" {
				if n := count(t, db, `select count(*) from events where kind = $1 and page_id = $2`, tt.eventKind, pageID); n != 1 {
					t.Errorf("no %s event stored", tt.eventKind)
				}
			}
			if n := count(t, db, `select count(*) from conversations`); n != tt.conversations {
				t.Errorf("conversations = %d, want %d", n, tt.conversations)
			}
		})
	}
}

// A malformed body is kept for inspection, once however often Meta
// resends it (deduplicated by SHA-256), and reported as EINVALID (400).
func TestMalformedKeptOnce(t *testing.T) {
	db, in := setup(t, webhook.Config{})
	bodies := [][]byte{
		[]byte(`{"object":"page","entry":[{"id":`),
		[]byte("not json \xff\xfe"),
		[]byte(`{"object":"page","entry":[{"id":"100200300","messaging":[{"message":{"mid":"m","text":"\u0000"}}]}]}`),
	}
	for round := 0; round < 3; round++ {
		for _, b := range bodies {
			err := in.Submit(context.Background(), b)
			if !errors.Is(err, messenger.ErrMalformed) || baton.ErrorCode(err) != baton.EINVALID {
				t.Fatalf("Submit(%q) = %v; want ErrMalformed with code invalid", b, err)
			}
		}
	}
	// Resent concurrently too: the unique index settles the race.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := in.Submit(context.Background(), bodies[0]); !errors.Is(err, messenger.ErrMalformed) {
				t.Errorf("concurrent Submit = %v", err)
			}
		}()
	}
	wg.Wait()
	ds := deliveries(t, db)
	if len(ds) != len(bodies) {
		t.Fatalf("stored %d deliveries, want %d", len(ds), len(bodies))
	}
	for i, d := range ds {
		if d.Status != "malformed" || string(d.Body) != string(bodies[i]) || d.Note == "" {
			t.Errorf("delivery %d = %s %q %q", i, d.Status, d.Note, d.Body)
		}
	}
	if n := count(t, db, `select count(*) from events`); n != 0 {
		t.Errorf("%d events from malformed bodies", n)
	}
}

// Many deliveries at once, each sent twice, over a few shared threads:
// every one is durable when Submit returns, none is applied twice, and
// the writers' batches do not deadlock on shared conversations.
func TestConcurrentSubmits(t *testing.T) {
	db, in := setup(t, webhook.Config{MaxBatch: 8})
	const people, n = 5, 120
	for p := 0; p < people; p++ {
		submit(t, in, one(pass(fmt.Sprint(psid, p), 10, botApp, batonID, "")))
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		b := one(userMsg(fmt.Sprint(psid, i%people), int64(100+i), fmt.Sprint("m_", i), "hi"))
		for copy := 0; copy < 2; copy++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := in.Submit(context.Background(), b); err != nil {
					t.Errorf("Submit: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	got := countAll(t, db)
	want := counts{deliveries: people + 2*n, events: people + n, messages: n, handovers: people, conversations: people, unread: n}
	if got != want {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
	for p := 0; p < people; p++ {
		if c := conv(t, db, fmt.Sprint(psid, p)); c.Unread != n/people {
			t.Errorf("person %d: unread %d, want %d", p, c.Unread, n/people)
		}
	}
	if b := in.Stats.Batches.Load(); b == 0 || in.Stats.Accepted.Load() != int64(people+2*n) {
		t.Errorf("stats: %d batches, %d accepted", b, in.Stats.Accepted.Load())
	}
}

// Close commits what is already queued before it returns: shutdown loses
// nothing a request handed over. Submit's caller giving up (a cancelled
// context) does not take its delivery back either.
func TestCloseDrainsQueue(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	if err := db.EnsurePage(ctx, baton.Page{PageID: pageID, BatonAppID: batonID, PrimaryAppID: botApp}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	// Not started: deliveries wait in the queue.
	in := webhook.New(db, webhook.Config{QueueSize: n, MaxBatch: 4, Now: func() time.Time { return now }})
	gone, cancel := context.WithCancel(ctx)
	cancel()
	for i := 0; i < n; i++ {
		err := in.Submit(gone, standby(userMsg(psid, int64(100+i), fmt.Sprint("m_", i), "x")))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Submit with a cancelled context = %v", err)
		}
	}
	// The queue is full: past it Baton answers 503 at once.
	err := in.Submit(ctx, standby(userMsg(psid, 1, "m_over", "x")))
	if !errors.Is(err, webhook.ErrOverloaded) || baton.ErrorCode(err) != baton.EUNAVAILABLE {
		t.Fatalf("Submit on a full queue = %v, want ErrOverloaded", err)
	}
	if n := count(t, db, `select count(*) from deliveries`); n != 0 {
		t.Fatalf("%d deliveries before the writers started", n)
	}
	in.Start()
	in.Close()
	if got := count(t, db, `select count(*) from messages`); got != n {
		t.Errorf("after Close: %d messages, want %d", got, n)
	}
	if got := count(t, db, `select count(*) from deliveries`); got != n {
		t.Errorf("after Close: %d deliveries, want %d", got, n)
	}
	in.Close() // idempotent
}

// OnCommit hears about each conversation a commit changed, with its new
// sequence number, and not about duplicates.
func TestOnCommit(t *testing.T) {
	var mu sync.Mutex
	var seen []baton.Conversation
	db, in := setup(t, webhook.Config{OnCommit: func(cs []*baton.Conversation) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			seen = append(seen, *c)
		}
	}})
	b := one(userMsg(psid, 100, "m_1", "hi"))
	submit(t, in, b)
	submit(t, in, b)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0].PSID != psid || seen[0].Seq != conv(t, db, psid).Seq || seen[0].Seq == 0 {
		t.Errorf("OnCommit saw %+v", seen)
	}
}

// An event that PostgreSQL's jsonb refuses although Go's decoder accepts
// it must not fail its delivery forever: Meta would retry it until the
// webhook is disabled. The delivery is acknowledged and the message stored.
func TestUnstorableAttachmentIsAcknowledged(t *testing.T) {
	tests := []struct{ name, payload string }{
		{"lone high surrogate", `{"title":"\ud83d"}`},
		{"lone low surrogate", `{"title":"x\ude00y"}`},
		{"reversed pair", `{"title":"\ude00\ud83d"}`},
		{"number beyond numeric", `{"n":1e999999}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, in := setup(t, webhook.Config{})
			ev := `{"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":5,"message":{"mid":"m_s","attachments":[{"type":"fallback","payload":` + tt.payload + `}]}}`
			if err := in.Submit(context.Background(), one(ev)); err != nil {
				t.Fatalf("Submit: %v", err)
			}
			if n := count(t, db, `select count(*) from messages where mid = 'm_s'`); n != 1 {
				t.Errorf("%d messages stored, want 1", n)
			}
		})
	}
}

// A poisoned delivery fails alone: the writer retries a failed batch one
// delivery at a time, so its neighbours in the batch still commit.
func TestFailureDoesNotFailNeighbours(t *testing.T) {
	store := &failing{}
	db := pgtest.DB(t)
	if err := db.EnsurePage(context.Background(), baton.Page{PageID: pageID, BatonAppID: batonID, PrimaryAppID: botApp}); err != nil {
		t.Fatal(err)
	}
	store.IngestStore, store.poison = db, []byte("m_poison")
	in := webhook.New(store, webhook.Config{Writers: 1, Now: func() time.Time { return now }})
	in.Start()
	defer in.Close()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		mid := fmt.Sprint("m_", i)
		if i == 3 {
			mid = "m_poison"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = in.Submit(context.Background(), one(userMsg(psid, int64(i), mid, "x")))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 3) != (err != nil) {
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	if i := 3; baton.ErrorCode(errs[i]) != baton.EUNAVAILABLE {
		t.Errorf("poisoned delivery: %v, want unavailable (503)", errs[i])
	}
	if n := count(t, db, `select count(*) from messages`); n != 9 {
		t.Errorf("%d messages, want 9", n)
	}
}

// failing is a store whose transactions fail when they hold a delivery
// containing poison.
type failing struct {
	baton.IngestStore
	poison []byte
}

func (f *failing) Ingest(ctx context.Context, fn func(baton.IngestTx) error) error {
	return f.IngestStore.Ingest(ctx, func(tx baton.IngestTx) error {
		return fn(&failingTx{IngestTx: tx, poison: f.poison})
	})
}

type failingTx struct {
	baton.IngestTx
	poison []byte
}

func (f *failingTx) InsertDeliveries(ctx context.Context, ds []*baton.RawDelivery) ([]int64, error) {
	for _, d := range ds {
		if strings.Contains(string(d.Body), string(f.poison)) {
			return nil, errors.New("refused")
		}
	}
	return f.IngestTx.InsertDeliveries(ctx, ds)
}
