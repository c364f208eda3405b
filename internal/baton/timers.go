package baton

import (
	"context"
	"time"
)

// TimerState is an open conversation together with what its clocks need:
// the idle auto-return, the expiry check and extend_thread_control
// (PROTOCOL.md §13.4). Kept apart from Conversation because only the
// timers worker and the idle warning read it.
type TimerState struct {
	Conv *Conversation
	// LastAgentActivity is the newest agent reply Baton sent or queued;
	// zero when no agent has written since the thread was handed over.
	LastAgentActivity time.Time
	// OwnerCheckedAt is when Baton last asked thread_owner; zero: never.
	OwnerCheckedAt time.Time
	// ExtendedUntil is when the last successful extend_thread_control runs
	// out; zero: never extended.
	ExtendedUntil time.Time
	// ExtendTriedAt is the last extend attempt, successful or not, so a
	// failing Graph is not asked on every tick.
	ExtendTriedAt time.Time
}

// TimerStore is the storage behind the thread timers and the owner
// resolution (internal/conversation.Timers). Methods that change a
// conversation bump its Seq for live updates.
type TimerStore interface {
	// OwnerUnsureConversations lists conversations whose owner an event or
	// a Graph error put in doubt (PROTOCOL.md §16), oldest first.
	OwnerUnsureConversations(ctx context.Context, limit int) ([]*Conversation, error)
	// OpenTimerStates lists the open conversations that are not being
	// handed back, with their timer fields.
	OpenTimerStates(ctx context.Context, limit int) ([]*TimerState, error)
	// TimerState returns one conversation's timer fields; ENOTFOUND when
	// missing.
	TimerState(ctx context.Context, id int64) (*TimerState, error)
	// ResolveOwner locks the conversation and lets fn apply a thread_owner
	// answer; it stores the conversation if fn changed it, the handover fn
	// returns (nil: none) and checkedAt as the time of the check, in one
	// transaction.
	ResolveOwner(ctx context.Context, id int64, checkedAt time.Time, fn func(c *Conversation) *Handover) (*Conversation, error)
	// RecordExtend records an extend attempt at triedAt; until is when the
	// extension runs out, nil when the attempt failed.
	RecordExtend(ctx context.Context, id int64, triedAt time.Time, until *time.Time) error
}
