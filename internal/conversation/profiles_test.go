package conversation

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

// profileStore is the slice of baton.ConsoleStore the fetcher uses.
type profileStore struct {
	baton.ConsoleStore // nil: any other call panics
	pending            []*baton.Conversation
	named              map[int64]string
	deferred           map[int64]time.Time
}

func (s *profileStore) ConversationsNeedingProfile(_ context.Context, now time.Time, limit int) ([]*baton.Conversation, error) {
	var out []*baton.Conversation
	for _, c := range s.pending {
		if _, done := s.named[c.ID]; done {
			continue
		}
		if at, ok := s.deferred[c.ID]; ok && now.Before(at) {
			continue
		}
		out = append(out, c)
	}
	return out[:min(limit, len(out))], nil
}

func (s *profileStore) DeferProfile(_ context.Context, id int64, until time.Time) (bool, error) {
	_, seen := s.deferred[id]
	s.deferred[id] = until
	return !seen, nil
}

func (s *profileStore) SetProfile(_ context.Context, id int64, first, last, pic string) error {
	s.named[id] = first + " " + last
	return nil
}

type profileSource map[string]error

func (p profileSource) Profile(_ context.Context, psid string) (string, string, string, bool, error) {
	if err, ok := p[psid]; ok {
		return "", "", "", errors.Is(err, errNoProfile), err
	}
	return "Name", psid, "", false, nil
}

var errNoProfile = errors.New("no profile")

// A failed look-up is put off by profileRetry and not asked again before;
// a person without a profile is settled at once (fallback name); the rest
// are named.
func TestProfileFetcher(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	store := &profileStore{
		pending:  []*baton.Conversation{{ID: 1, PSID: "a"}, {ID: 2, PSID: "b"}, {ID: 3, PSID: "c"}},
		named:    map[int64]string{},
		deferred: map[int64]time.Time{},
	}
	src := profileSource{"a": errors.New("graph down"), "b": errNoProfile}
	var changed []int64
	f := &ProfileFetcher{Store: store, Source: src, Now: func() time.Time { return now },
		OnChange: func(id int64) { changed = append(changed, id) }}

	f.once(context.Background())
	if got := store.deferred[1]; !got.Equal(now.Add(profileRetry)) {
		t.Errorf("failed look-up deferred to %v, want %v", got, now.Add(profileRetry))
	}
	if _, ok := store.named[2]; !ok {
		t.Error("a person without a profile should be settled")
	}
	if store.named[3] != "Name c" || len(changed) != 2 {
		t.Errorf("named = %v, changed = %v; want 2 and 3 settled", store.named, changed)
	}

	delete(src, "a")
	now = now.Add(profileRetry - time.Second)
	f.once(context.Background())
	if _, ok := store.named[1]; ok {
		t.Error("retried before its time")
	}
	now = now.Add(time.Second)
	f.once(context.Background())
	if store.named[1] != "Name a" {
		t.Errorf("after the retry time: named[1] = %q, want it named", store.named[1])
	}
}
