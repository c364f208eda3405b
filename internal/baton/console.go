package baton

import (
	"context"
	"time"
)

// Folder is a view of the inbox.
type Folder string

const (
	FolderInbox     Folder = "inbox"     // Baton owns the thread
	FolderMine      Folder = "mine"      // Inbox, assigned to the viewer
	FolderBot       Folder = "bot"       // the bot (or another app) owns it
	FolderRequested Folder = "requested" // control requested, pending
	FolderDone      Folder = "done"      // Baton handed it back
	FolderAll       Folder = "all"
)

// ConversationFilter selects conversations for a list.
type ConversationFilter struct {
	Folder Folder
	// Search matches the person's name or the last message.
	Search string
	UserID int64 // the viewer, for FolderMine
	Limit  int
	// Sort is SortNewest (default), SortWaiting or SortWindow.
	Sort string
	// Tag keeps conversations carrying this tag.
	Tag string
	// WindowCutoffMS: a last user event at or before it means the
	// messaging window is closed; SortWindow puts those last.
	WindowCutoffMS int64
}

// OutboxItem is one thing Baton must say to Facebook for an agent: a
// message, a pass (Done), a request, or a sender action.
type OutboxItem struct {
	ID             int64
	ConversationID int64
	Kind           string // message | pass | request | typing_on | mark_seen
	Text           string
	AttachmentType string
	AttachmentURL  string
	TargetAppID    string
	Metadata       string
	AuthorUserID   *int64
	Status         string // pending | sending | sent | failed | cancelled
	Attempts       int
	NextAttemptAt  time.Time
	MessagingType  string
	Tag            string
	MID            string
	LastError      string
	ErrorCode      int
	ErrorSubcode   int
	CreatedAt      time.Time
	SentAt         *time.Time

	// Filled when claimed by the worker.
	PSID            string
	LastUserEventMS int64
	// EchoSeen: an echo carrying this item's metadata arrived, so a send
	// whose response was lost did go out.
	EchoSeen bool
}

// Outbox statuses.
const (
	OutboxPending = "pending"
	OutboxSending = "sending"
	OutboxSent    = "sent"
	OutboxFailed  = "failed"
)

// OutboxResult is what the worker learnt from one attempt.
type OutboxResult struct {
	// Status: sent, failed, or pending (retry at RetryAt).
	Status        string
	RetryAt       time.Time
	MID           string
	MessagingType string
	Tag           string
	Error         string
	Code, Subcode int
	// OwnerUnsure: Graph said Baton is not the owner; re-check.
	OwnerUnsure bool
}

// ConsoleStore is the storage behind the console. Methods that change a
// conversation bump its Seq for live updates.
type ConsoleStore interface {
	ListConversations(ctx context.Context, f ConversationFilter) ([]*Conversation, error)
	// Conversation returns one conversation; ENOTFOUND when missing.
	Conversation(ctx context.Context, id int64) (*Conversation, error)
	// Messages returns up to limit messages before message id beforeID
	// (0 = newest), oldest first.
	Messages(ctx context.Context, conversationID, beforeID int64, limit int) ([]*Message, error)
	Handovers(ctx context.Context, conversationID int64) ([]*Handover, error)
	// OutboxOf lists the conversation's outbox items not yet confirmed as
	// messages (pending, sending, failed) and its recent passes/requests.
	OutboxOf(ctx context.Context, conversationID int64) ([]*OutboxItem, error)
	// Enqueue locks the conversation, lets check refuse or change it, then
	// stores it and the item in one transaction.
	Enqueue(ctx context.Context, conversationID int64, item *OutboxItem, check func(c *Conversation) error) error
	// Update locks the conversation, applies fn and stores it.
	Update(ctx context.Context, conversationID int64, fn func(c *Conversation) error) (*Conversation, error)
	// RetryOutbox puts a failed item back in the queue, once check (given
	// the item's kind and its locked conversation) allows it.
	RetryOutbox(ctx context.Context, outboxID int64, check func(kind string, c *Conversation) error) (*OutboxItem, error)
	SetProfile(ctx context.Context, conversationID int64, first, last, pic string) error
	// ConversationsNeedingProfile lists, oldest first, conversations whose
	// profile was never fetched and whose next try is due at now.
	ConversationsNeedingProfile(ctx context.Context, now time.Time, limit int) ([]*Conversation, error)
	// DeferProfile puts off the next look-up until the given time; first
	// reports whether this is the conversation's first failed look-up.
	DeferProfile(ctx context.Context, conversationID int64, until time.Time) (first bool, err error)
}

// OutboxStore is the queue the outbox worker drains.
type OutboxStore interface {
	// ClaimOutbox marks up to limit due items as sending and returns them,
	// oldest first and at most one per conversation, skipping rows other
	// workers hold.
	ClaimOutbox(ctx context.Context, limit int, now time.Time) ([]*OutboxItem, error)
	// CompleteOutbox records an attempt's result and its effects on the
	// conversation (message stored, Done applied…) in one transaction, and
	// returns the conversation id changed.
	CompleteOutbox(ctx context.Context, item *OutboxItem, r OutboxResult, now time.Time) error
}
