package postgres_test

import (
	"context"
	"testing"
	"time"
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
