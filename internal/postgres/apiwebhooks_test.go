package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/postgres"
)

// rowEvents is a derive function that makes one event per row, so the
// storage tests see exactly which rows the dispatcher read.
func rowEvents(rows []*baton.APISourceRow) []*baton.APIEvent {
	out := make([]*baton.APIEvent, 0, len(rows))
	for _, r := range rows {
		text := ""
		if r.Message != nil {
			text = r.Message.Text
		}
		out = append(out, &baton.APIEvent{V: 1, ID: r.Source + "_" + text, Type: baton.APIEventMessageCreated, At: r.At,
			Data: map[string]any{"text": text}})
	}
	return out
}

// dispatched returns the event ids queued for endpoint, in id order.
func dispatched(t *testing.T, db *postgres.DB, endpoint int64) []string {
	t.Helper()
	var ids []string
	if err := db.Select(&ids, `select event_id from api_webhook_deliveries where endpoint_id = $1 order by id`, endpoint); err != nil {
		t.Fatal(err)
	}
	return ids
}

func dispatchMessages(t *testing.T, db *postgres.DB) {
	t.Helper()
	if _, err := db.DispatchAPIEvents(context.Background(), baton.APISourceMessages, 100, rowEvents); err != nil {
		t.Fatal(err)
	}
}

// dispatchUntil dispatches until endpoint's queued event ids are want.
// The test cluster is shared: a transaction another test binary holds
// open delays what the dispatcher may read (never what it reads in the
// end), so a single pass may legitimately find nothing yet. The deadline
// only stops a broken run from hanging.
func dispatchUntil(t *testing.T, db *postgres.DB, endpoint int64, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		dispatchMessages(t, db)
		got := strings.Join(dispatched(t, db, endpoint), ",")
		if got == want {
			return
		}
		if time.Now().After(deadline) || (len(got) > len(want)) {
			t.Fatalf("queued %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func begin(t *testing.T, db *postgres.DB) *sql.Tx {
	t.Helper()
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	return tx
}

func insertMessage(t *testing.T, tx *sql.Tx, conv int64, text string) int64 {
	t.Helper()
	var id int64
	if err := tx.QueryRow(`
		insert into messages (conversation_id, mid, author, text, part, timestamp_ms)
		values ($1, 'm' || gen_random_uuid(), 'user', $2, 'live', 1) returning id`, conv, text).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestAPIWebhookCursorOutOfOrderCommits: identity ids are not commit
// ordered. Two concurrent transactions commit in the opposite order of
// their ids (and of their transaction ids); the dispatcher must deliver
// every row once, never skipping the one that committed last.
func TestAPIWebhookCursorOutOfOrderCommits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ep, err := f.db.CreateAPIWebhookEndpoint(ctx, "https://crm.example.test/hook", []string{baton.APIEventMessageCreated}, nil)
	if err != nil {
		t.Fatal(err)
	}
	conv := f.conversation("111", "Maria", "Garcia", "open", nil)

	// 1. The smaller id commits last: A inserts first (smaller id, older
	// transaction), B inserts and commits; A is still running.
	a := begin(t, f.db)
	ida := insertMessage(t, a, conv, "a")
	b := begin(t, f.db)
	idb := insertMessage(t, b, conv, "b")
	if ida >= idb {
		t.Fatalf("ids %d, %d: want a < b", ida, idb)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	dispatchMessages(t, f.db)
	if got := dispatched(t, f.db, ep.ID); len(got) != 0 {
		t.Fatalf("while A runs, dispatched %v: B's row must wait (A's smaller id could commit later)", got)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	dispatchUntil(t, f.db, ep.ID, "messages_a,messages_b")

	// 2. The bigger id from the older transaction commits first: C takes
	// its transaction id first, D inserts (smaller id, newer
	// transaction), C inserts (bigger id) and commits, the dispatcher runs,
	// then D commits. A cursor on ids alone would skip D's row.
	c := begin(t, f.db)
	if _, err := c.Exec(`select pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	d := begin(t, f.db)
	idd := insertMessage(t, d, conv, "d")
	idc := insertMessage(t, c, conv, "c")
	if idd >= idc {
		t.Fatalf("ids %d, %d: want d < c", idd, idc)
	}
	if err := c.Commit(); err != nil {
		t.Fatal(err)
	}
	dispatchUntil(t, f.db, ep.ID, "messages_a,messages_b,messages_c")
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	// D's smaller id must not be skipped (nor anything doubled).
	dispatchUntil(t, f.db, ep.ID, "messages_a,messages_b,messages_c,messages_d")
	dispatchMessages(t, f.db)
	if got := strings.Join(dispatched(t, f.db, ep.ID), ","); got != "messages_a,messages_b,messages_c,messages_d" {
		t.Fatalf("after another pass: %s", got)
	}
}

// TestAPIWebhookDispatchLocksTheSource: while one instance holds a
// source, another skips it instead of queueing the same rows again.
func TestAPIWebhookDispatchLocksTheSource(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ep, err := f.db.CreateAPIWebhookEndpoint(ctx, "https://crm.example.test/hook", []string{baton.APIEventMessageCreated}, nil)
	if err != nil {
		t.Fatal(err)
	}
	conv := f.conversation("111", "Maria", "Garcia", "open", nil)
	f.message(conv, "user", "hello", 1)
	holder := begin(t, f.db)
	if _, err := holder.Exec(`select 1 from api_webhook_cursors where source = 'messages' for update`); err != nil {
		t.Fatal(err)
	}
	n, err := f.db.DispatchAPIEvents(ctx, baton.APISourceMessages, 100, rowEvents)
	if err != nil || n != 0 {
		t.Fatalf("dispatch while held: %d, %v", n, err)
	}
	holder.Rollback()
	dispatchUntil(t, f.db, ep.ID, "messages_hello")
}

// TestAPIWebhookNoEndpointSkips: events from before any endpoint existed
// are not kept for it; the cursor moves past them without reading.
func TestAPIWebhookNoEndpointSkips(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	conv := f.conversation("111", "Maria", "Garcia", "open", nil)
	f.message(conv, "user", "before", 1)
	deadline := time.Now().Add(20 * time.Second)
	for passed := false; !passed; {
		dispatchMessages(t, f.db)
		if err := f.db.Get(&passed, `
			select c.xact > m.xact
			from api_webhook_cursors c, messages m
			where c.source = 'messages' and m.text = 'before'`); err != nil {
			t.Fatal(err)
		}
		if !passed && time.Now().After(deadline) {
			t.Fatal("the cursor never moved past the row")
		}
	}
	ep, err := f.db.CreateAPIWebhookEndpoint(ctx, "http://10.0.0.1:8000/hook", []string{baton.APIEventMessageCreated}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.message(conv, "user", "after", 2)
	dispatchUntil(t, f.db, ep.ID, "messages_after")
}

func TestAPIWebhookEndpointRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		url    string
		events []string
		ok     bool
	}{
		{"https://crm.example.test/hook", []string{baton.APIEventDone}, true},
		{"http://127.0.0.1:9000/x?y=1", baton.APIEventTypes, true},
		{"ftp://crm.example.test/hook", []string{baton.APIEventDone}, false},
		{"crm.example.test/hook", []string{baton.APIEventDone}, false},
		{"https://user:pw@crm.example.test/hook", []string{baton.APIEventDone}, false},
		{"https://crm.example.test/hook", nil, false},
		{"https://crm.example.test/hook", []string{"conversation.exploded"}, false},
	}
	for _, c := range cases {
		ep, err := f.db.CreateAPIWebhookEndpoint(ctx, c.url, c.events, nil)
		if c.ok != (err == nil) {
			t.Errorf("%q %v: err %v, want ok=%v", c.url, c.events, err, c.ok)
			continue
		}
		if err != nil {
			if baton.ErrorCode(err) != baton.EINVALID {
				t.Errorf("%q: code %q", c.url, baton.ErrorCode(err))
			}
			continue
		}
		if !strings.HasPrefix(ep.Secret, "whsec_") || len(ep.Secret) < 40 || !ep.Enabled {
			t.Errorf("new endpoint %+v", ep)
		}
	}
	if _, err := f.db.SetAPIWebhookEndpointEnabled(ctx, 999999, false); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Errorf("unknown endpoint: %v", err)
	}
	if err := f.db.EnqueueAPIWebhookEvent(ctx, 999999, baton.NewAPITestEvent(time.Now())); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Errorf("test event to an unknown endpoint: %v", err)
	}
}

// TestAPIWebhookClaimAndComplete: one delivery in flight per endpoint, a
// retry waits for its time, a lease that runs out makes it due again, and
// each attempt is recorded on the delivery and the endpoint.
func TestAPIWebhookClaimAndComplete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.db.Now = func() time.Time { return now }
	ep1, _ := f.db.CreateAPIWebhookEndpoint(ctx, "https://one.example.test/", []string{baton.APIEventDone}, nil)
	ep2, _ := f.db.CreateAPIWebhookEndpoint(ctx, "https://two.example.test/", []string{baton.APIEventDone}, nil)
	for i := range 2 {
		for _, ep := range []int64{ep1.ID, ep2.ID} {
			ev := &baton.APIEvent{V: 1, ID: "e" + strconv.Itoa(i), Type: baton.APIEventDone, At: now, Data: map[string]any{"i": i}}
			if err := f.db.EnqueueAPIWebhookEvent(ctx, ep, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	lease := time.Minute
	got, err := f.db.ClaimAPIWebhookDeliveries(ctx, 10, now, lease)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].EndpointID == got[1].EndpointID || got[0].EventID != "e0" || got[1].EventID != "e0" {
		t.Fatalf("first claim: %+v", got)
	}
	if got[0].Secret == "" || got[0].URL == "" || got[0].Attempts != 1 {
		t.Fatalf("claimed without endpoint data: %+v", got[0])
	}
	var body map[string]any
	if err := json.Unmarshal(got[0].Body, &body); err != nil || body["id"] != "e0" {
		t.Fatalf("body %s: %v", got[0].Body, err)
	}
	if more, _ := f.db.ClaimAPIWebhookDeliveries(ctx, 10, now, lease); len(more) != 0 {
		t.Fatalf("claimed while each endpoint has one in flight: %+v", more)
	}
	// Endpoint 1 answered; endpoint 2 failed and retries in 10 s.
	first1, first2 := got[0], got[1]
	if first1.EndpointID != ep1.ID {
		first1, first2 = first2, first1
	}
	if err := f.db.CompleteAPIWebhookDelivery(ctx, first1, baton.APIWebhookResult{Status: baton.APIDeliverySent, HTTPStatus: 204, Latency: 12 * time.Millisecond}, now); err != nil {
		t.Fatal(err)
	}
	retryAt := now.Add(10 * time.Second)
	if err := f.db.CompleteAPIWebhookDelivery(ctx, first2, baton.APIWebhookResult{Status: baton.APIDeliveryPending, HTTPStatus: 500, Error: "The receiver answered 500.", RetryAt: retryAt}, now); err != nil {
		t.Fatal(err)
	}
	// Each delivery is independent: endpoint 2's failed one waits for its
	// retry without holding back the next.
	got, _ = f.db.ClaimAPIWebhookDeliveries(ctx, 10, now, lease)
	if len(got) != 2 || got[0].EventID != "e1" || got[1].EventID != "e1" {
		t.Fatalf("second claim: %+v", got)
	}
	second2 := got[0]
	if second2.EndpointID != ep2.ID {
		second2 = got[1]
	}
	if err := f.db.CompleteAPIWebhookDelivery(ctx, second2, baton.APIWebhookResult{Status: baton.APIDeliverySent, HTTPStatus: 200}, now); err != nil {
		t.Fatal(err)
	}
	got, _ = f.db.ClaimAPIWebhookDeliveries(ctx, 10, retryAt, lease)
	if len(got) != 1 || got[0].EndpointID != ep2.ID || got[0].EventID != "e0" || got[0].Attempts != 2 {
		t.Fatalf("retry claim: %+v", got)
	}
	// Endpoint 1's sender died with e1: after the lease it is due again.
	got, _ = f.db.ClaimAPIWebhookDeliveries(ctx, 10, now.Add(lease+time.Second), lease)
	found := false
	for _, d := range got {
		found = found || (d.EndpointID == ep1.ID && d.EventID == "e1" && d.Attempts == 2)
	}
	if !found {
		t.Fatalf("expired lease not claimed again: %+v", got)
	}
	eps, err := f.db.APIWebhookEndpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range eps {
		switch e.ID {
		case ep1.ID:
			if e.LastStatus != 204 || e.LastSuccessAt == nil || e.LastError != "" {
				t.Errorf("endpoint 1: %+v", e)
			}
		case ep2.ID:
			if e.LastStatus != 200 || e.LastSuccessAt == nil || e.LastError != "" {
				t.Errorf("endpoint 2: %+v", e)
			}
		}
	}
	ds, err := f.db.APIWebhookDeliveries(ctx, ep1.ID, 10)
	if err != nil || len(ds) != 2 || ds[1].Status != baton.APIDeliverySent || ds[1].LatencyMS != 12 || ds[1].SentAt == nil {
		t.Fatalf("endpoint 1 deliveries: %+v, %v", ds, err)
	}
	// A disabled endpoint's deliveries wait; deleting removes them.
	if _, err := f.db.SetAPIWebhookEndpointEnabled(ctx, ep2.ID, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.db.ClaimAPIWebhookDeliveries(ctx, 10, now.Add(time.Hour), lease); len(got) != 1 || got[0].EndpointID != ep1.ID {
		t.Fatalf("claim with endpoint 2 disabled: %+v", got)
	}
	if _, err := f.db.DeleteAPIWebhookEndpoint(ctx, ep2.ID); err != nil {
		t.Fatal(err)
	}
	if ds, _ := f.db.APIWebhookDeliveries(ctx, ep2.ID, 10); len(ds) != 0 {
		t.Fatalf("deliveries of a deleted endpoint: %+v", ds)
	}
}
