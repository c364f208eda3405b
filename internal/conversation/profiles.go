package conversation

import (
	"context"
	"log/slog"
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

// ProfileSource looks up a person's public profile (the User Profile API).
// notFound: the platform has no profile for them (phone-registered users):
// Baton stops asking and shows a fallback name.
type ProfileSource interface {
	Profile(ctx context.Context, psid string) (first, last, pic string, notFound bool, err error)
}

// ProfileFetcher fills in names and pictures of new conversations in the
// background, so ingest never waits on the Graph API.
type ProfileFetcher struct {
	Store  baton.ConsoleStore
	Source ProfileSource
	Logger *slog.Logger
	// Wake makes it look at once (after an ingest commit).
	Wake <-chan struct{}
	// OnChange is told which conversation got its profile.
	OnChange func(conversationID int64)
}

// profilePoll is the fallback interval when no wake-up comes.
const profilePoll = 5 * time.Second

// Run works until ctx ends.
func (f *ProfileFetcher) Run(ctx context.Context) {
	t := time.NewTicker(profilePoll)
	defer t.Stop()
	failures := map[int64]int{}
	for {
		f.once(ctx, failures)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.Wake:
		}
	}
}

func (f *ProfileFetcher) once(ctx context.Context, failures map[int64]int) {
	cs, err := f.Store.ConversationsNeedingProfile(ctx, 20)
	if err != nil {
		return
	}
	for _, c := range cs {
		if failures[c.ID] > 0 && failures[c.ID]%6 != 0 {
			failures[c.ID]++ // back off: try a failing one every sixth round
			continue
		}
		first, last, pic, notFound, err := f.Source.Profile(ctx, c.PSID)
		if err != nil && !notFound {
			failures[c.ID]++
			if f.Logger != nil {
				f.Logger.Warn("user profile lookup failed", "conversation", c.ID, "err", err)
			}
			continue
		}
		delete(failures, c.ID)
		if err := f.Store.SetProfile(ctx, c.ID, first, last, pic); err == nil && f.OnChange != nil {
			f.OnChange(c.ID)
		}
	}
}
