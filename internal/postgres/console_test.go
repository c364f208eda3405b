package postgres_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/pgtest"
)

// The fetcher's work list: never-fetched conversations, oldest first, minus
// those whose deferred retry is not yet due; a fetched one leaves the list.
func TestConversationsNeedingProfile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	a := f.conversation("a", "", "", "bot", nil)
	b := f.conversation("b", "", "", "bot", nil)
	c := f.conversation("c", "", "", "bot", nil)

	ids := func(at time.Time) []int64 {
		t.Helper()
		cs, err := f.db.ConversationsNeedingProfile(ctx, at, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	if got := ids(now); !equalIDs(got, []int64{a, b, c}) {
		t.Fatalf("pending = %v, want %v", got, []int64{a, b, c})
	}

	first, err := f.db.DeferProfile(ctx, a, now.Add(30*time.Second))
	if err != nil || !first {
		t.Fatalf("first DeferProfile = %v, %v; want true, nil", first, err)
	}
	if again, err := f.db.DeferProfile(ctx, a, now.Add(60*time.Second)); err != nil || again {
		t.Fatalf("second DeferProfile = %v, %v; want false, nil", again, err)
	}
	if err := f.db.SetProfile(ctx, b, "Bea", "B", ""); err != nil {
		t.Fatal(err)
	}
	if got := ids(now.Add(59 * time.Second)); !equalIDs(got, []int64{c}) {
		t.Fatalf("before a's retry is due: pending = %v, want [%d]", got, c)
	}
	if got := ids(now.Add(60 * time.Second)); !equalIDs(got, []int64{a, c}) {
		t.Fatalf("once a's retry is due: pending = %v, want [%d %d]", got, a, c)
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Folder counts and, per folder, the conversations with unread messages.
func TestCountConversationsUnread(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now()
	read := f.conversation("r", "", "", "open", &now)
	unread := f.conversation("u", "", "", "open", &now)
	botUnread := f.conversation("b", "", "", "bot", nil)
	if _, err := f.db.Exec(`update conversations set unread = 2 where id = any($1)`, "{"+itoa(unread)+","+itoa(botUnread)+"}"); err != nil {
		t.Fatal(err)
	}
	_ = read
	total, un, err := f.db.CountConversations(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		folder        string
		total, unread int
	}{
		{"inbox", 2, 1}, {"unassigned", 2, 1}, {"bot", 1, 1}, {"all", 3, 2}, {"done", 0, 0}, {"mine", 0, 0},
	} {
		if got := total[baton.Folder(tc.folder)]; got != tc.total {
			t.Errorf("%s: total %d, want %d", tc.folder, got, tc.total)
		}
		if got := un[baton.Folder(tc.folder)]; got != tc.unread {
			t.Errorf("%s: unread %d, want %d", tc.folder, got, tc.unread)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// RetryOutbox lets its check see the item's kind and the locked
// conversation, and retries only what the check allows.
func TestRetryOutboxCheck(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now()
	open := f.conversation("o", "", "", "open", &now)
	back := f.conversation("b", "", "", "bot", nil)
	failed := func(conv int64) int64 {
		var id int64
		if err := f.db.Get(&id, `insert into outbox (conversation_id, kind, text, status) values ($1, 'message', 'hi', 'failed') returning id`, conv); err != nil {
			t.Fatal(err)
		}
		return id
	}
	ownedOnly := func(kind string, c *baton.Conversation) error {
		if kind != "message" {
			t.Errorf("check saw kind %q, want message", kind)
		}
		if c.Status != baton.StatusOpen {
			return baton.Errorf(baton.ECONFLICT, "not owned")
		}
		return nil
	}
	if it, err := f.db.RetryOutbox(ctx, failed(open), ownedOnly); err != nil || it.Status != "pending" {
		t.Errorf("retry while open: %v, %v; want it pending", it, err)
	}
	refused := failed(back)
	if _, err := f.db.RetryOutbox(ctx, refused, ownedOnly); baton.ErrorCode(err) != baton.ECONFLICT {
		t.Errorf("retry after the bot took it back: %v, want a conflict", err)
	}
	var status string
	if err := f.db.Get(&status, `select status from outbox where id = $1`, refused); err != nil || status != "failed" {
		t.Errorf("refused retry left status %q (%v), want failed", status, err)
	}
	if _, err := f.db.RetryOutbox(ctx, 987654, ownedOnly); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Errorf("retry of no such message: %v, want not found", err)
	}
}

// Baton's connections plan prepared statements for each run's
// parameters: a generic plan cached while a table is small stays bad.
func TestConnectionsPlanEachRun(t *testing.T) {
	db := pgtest.DB(t)
	var mode string
	if err := db.Get(&mode, `show plan_cache_mode`); err != nil {
		t.Fatal(err)
	}
	if mode != "force_custom_plan" {
		t.Errorf("plan_cache_mode = %q, want force_custom_plan", mode)
	}
}
