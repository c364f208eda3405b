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
	Now      func() time.Time
}

// profileRetry is how long a failed look-up waits before the next try.
// The time is stored with the conversation, so every instance honours it.
const profileRetry = 30 * time.Second

// profilePoll is the fallback interval when no wake-up comes.
const profilePoll = 5 * time.Second

// profileBatch is how many conversations one round looks up.
const profileBatch = 20

// Run works until ctx ends.
func (f *ProfileFetcher) Run(ctx context.Context) {
	t := time.NewTicker(profilePoll)
	defer t.Stop()
	for {
		f.once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.Wake:
		}
	}
}

func (f *ProfileFetcher) once(ctx context.Context) {
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	cs, err := f.Store.ConversationsNeedingProfile(ctx, now(), profileBatch)
	if err != nil {
		return
	}
	for _, c := range cs {
		first, last, pic, notFound, err := f.Source.Profile(ctx, c.PSID)
		if ctx.Err() != nil {
			return // shutting down: the next start picks it up
		}
		if err != nil && !notFound {
			firstFailure, derr := f.Store.DeferProfile(ctx, c.ID, now().Add(profileRetry))
			if derr == nil && firstFailure && f.Logger != nil {
				f.Logger.Warn("user profile lookup failed; retrying every 30 s", "conversation", c.ID, "err", err)
			}
			continue
		}
		if err := f.Store.SetProfile(ctx, c.ID, first, last, pic); err == nil && f.OnChange != nil {
			f.OnChange(c.ID)
		}
	}
}
