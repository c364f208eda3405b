package baton

import "context"

// RawDelivery is one webhook POST body that passed the signature check,
// with its parsed events (none when it was malformed or ignored).
type RawDelivery struct {
	Body   []byte
	SHA256 []byte
	// Status: "ok", "malformed" (kept for inspection) or "ignored" (another
	// object or an unknown Page: stored and flagged, nothing more).
	Status string
	Note   string
	Events []Event
}

// ConversationKey names a thread: one conversation per (page, person).
type ConversationKey struct{ PageID, PSID string }

// IngestTx is the storage a batch of deliveries is applied through, inside
// one transaction: either the raw deliveries and all their effects are
// stored, or none is and every sender gets an error.
type IngestTx interface {
	// InsertDeliveries stores the raw bodies and returns their ids. A
	// malformed body already stored gets the id of the earlier copy.
	InsertDeliveries(ctx context.Context, ds []*RawDelivery) ([]int64, error)
	// InsertEvents records events (delivery ids parallel to evs) and
	// reports which were new under the per-Page dedupe key.
	InsertEvents(ctx context.Context, deliveryIDs []int64, evs []*Event) ([]bool, error)
	// Pages returns the known pages among ids.
	Pages(ctx context.Context, ids []string) (map[string]*Page, error)
	SavePage(ctx context.Context, p *Page) error
	// LockConversations returns the conversations for keys, creating the
	// missing ones, locked for update in a fixed order (no deadlocks).
	LockConversations(ctx context.Context, keys []ConversationKey) (map[ConversationKey]*Conversation, error)
	// SaveConversations writes the conversations back and bumps their Seq.
	SaveConversations(ctx context.Context, cs []*Conversation) error
	// InsertMessages stores messages, skipping a mid already stored in the
	// conversation (an echo of a send Baton recorded first links to it).
	InsertMessages(ctx context.Context, ms []*Message) error
	InsertHandovers(ctx context.Context, hs []*Handover) error
	SetReaction(ctx context.Context, conversationID int64, mid, reaction string) error
}

// IngestStore runs fn in one transaction.
type IngestStore interface {
	Ingest(ctx context.Context, fn func(IngestTx) error) error
}
