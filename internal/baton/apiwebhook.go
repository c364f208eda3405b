package baton

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"
)

// Outgoing webhooks tell a team's own systems (a CRM, a ticketing tool)
// what happened in Baton, so they need not poll the API. The event body
// is a versioned contract: fields are added, never renamed or removed
// within v1.

// Event types of outgoing webhooks.
const (
	// APIEventHandedOver: the bot (or another app) passed the thread to
	// Baton; data carries the pass metadata.
	APIEventHandedOver = "conversation.handed_over"
	// APIEventDone: Baton handed the thread back (an agent's Done or the
	// idle auto-return); data carries the Done metadata.
	APIEventDone = "conversation.done"
	// APIEventTakenBack: the bot took the thread from Baton.
	APIEventTakenBack = "conversation.taken_back"
	// APIEventMessageCreated: a message of the person, an agent, the bot
	// or another app was recorded.
	APIEventMessageCreated = "message.created"
	// APIEventAssigned: a conversation was claimed, assigned, auto-assigned
	// or unassigned.
	APIEventAssigned = "conversation.assigned"
	// APIEventTagged: a tag was added to or removed from a conversation.
	APIEventTagged = "conversation.tagged"
	// APIEventControlRequested: someone asked for control of a thread (an
	// agent of Baton, or another app asking Baton).
	APIEventControlRequested = "control.requested"
	// APIEventTest is sent by the admin page's "Send test event" button to
	// one endpoint, whatever types it chose.
	APIEventTest = "webhook.test"
)

// APIEventTypes lists the event types an endpoint may choose, in the
// order the admin page shows them.
var APIEventTypes = []string{
	APIEventHandedOver, APIEventDone, APIEventTakenBack, APIEventMessageCreated,
	APIEventAssigned, APIEventTagged, APIEventControlRequested,
}

// APIEventVersion is the "v" of every event body.
const APIEventVersion = 1

// APIEvent is the JSON body of one outgoing webhook.
type APIEvent struct {
	V    int    `json:"v"`
	ID   string `json:"id"`
	Type string `json:"type"`
	// At is when the event happened (the source row's time), UTC.
	At time.Time `json:"at"`
	// Conversation is the conversation as it is when the event is
	// dispatched (moments after At), nil for events about no conversation.
	Conversation *APIEventConversation `json:"conversation,omitempty"`
	Data         map[string]any        `json:"data"`
}

// APIEventConversation is the conversation an event is about.
type APIEventConversation struct {
	ID          int64  `json:"id"`
	PageID      string `json:"page_id"`
	PSID        string `json:"psid"`
	Name        string `json:"name"`
	Status      string `json:"status"`
	CloseReason string `json:"close_reason,omitempty"`
	// Owner: baton, bot, page_inbox, idle, other or unknown.
	Owner          string `json:"owner"`
	OwnerAppID     string `json:"owner_app_id"`
	AssignedUserID *int64 `json:"assigned_user_id"`
	// Assignee names the assigned user, nil when nobody is.
	Assignee *APIEventUser `json:"assignee"`
}

// APIEventUser is a console user as events name them.
type APIEventUser struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Marshal encodes the event as sent: JSON without HTML escaping, so a
// message's "<b>" arrives as the text "<b>" (still valid JSON; receivers
// must treat every string as text, never as markup).
func (e *APIEvent) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// APIWebhookEndpoint is a receiver an admin registered.
type APIWebhookEndpoint struct {
	ID  int64
	URL string
	// Secret signs every delivery; the admin sees it once, at creation.
	Secret  string
	Events  []string
	Enabled bool
	// CreatedBy is the admin who registered it, nil once they are gone.
	CreatedBy     *int64
	CreatedAt     time.Time
	LastStatus    int // HTTP status of the last attempt, 0 when none answered
	LastError     string
	LastAttemptAt *time.Time
	LastSuccessAt *time.Time
}

// Wants reports whether the endpoint receives events of type t (the test
// event always goes).
func (e *APIWebhookEndpoint) Wants(t string) bool {
	return t == APIEventTest || slices.Contains(e.Events, t)
}

// Delivery statuses.
const (
	APIDeliveryPending = "pending"
	APIDeliverySending = "sending"
	APIDeliverySent    = "sent"
	APIDeliveryFailed  = "failed"
)

// APIWebhookDelivery is one event for one endpoint, with its attempts.
type APIWebhookDelivery struct {
	ID            int64
	EndpointID    int64
	EventID       string
	EventType     string
	Body          []byte
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	CreatedAt     time.Time
	LastStatus    int
	LastError     string
	LatencyMS     int
	SentAt        *time.Time
	// URL and Secret are the endpoint's, read when the delivery is claimed
	// (an admin may have rotated them meanwhile).
	URL    string
	Secret string
}

// APIWebhookResult is the outcome of one attempt.
type APIWebhookResult struct {
	// Status: sent, pending (try again at RetryAt) or failed (given up).
	Status     string
	HTTPStatus int
	Latency    time.Duration
	Error      string
	RetryAt    time.Time
}

// Sources of outgoing webhook events: the tables whose rows they are
// derived from.
const (
	APISourceHandovers = "handovers"
	APISourceMessages  = "messages"
	APISourceAudit     = "audit_log"
)

// APISources lists every source the dispatcher reads.
var APISources = []string{APISourceHandovers, APISourceMessages, APISourceAudit}

// APISourceRow is one durable row an event may be derived from: exactly
// one of Handover, Message and Audit is set, with the conversation it is
// about (nil when it is about none) and that conversation's assignee.
type APISourceRow struct {
	Source       string
	Handover     *Handover
	Message      *Message
	Audit        *AuditRecord
	Conversation *Conversation
	Assignee     *APIEventUser
	// At is when the row was written.
	At time.Time
}

// APIWebhookStore is the storage of outgoing webhooks. The admin page
// manages endpoints; the dispatcher and the sender of every instance share
// the rest (each claim is exclusive). Errors: ENOTFOUND for an unknown
// endpoint, EINVALID for a bad URL or event list.
type APIWebhookStore interface {
	// CreateAPIWebhookEndpoint registers an endpoint with a new secret,
	// returned in full this once.
	CreateAPIWebhookEndpoint(ctx context.Context, url string, events []string, createdBy *int64) (*APIWebhookEndpoint, error)
	APIWebhookEndpoints(ctx context.Context) ([]*APIWebhookEndpoint, error)
	SetAPIWebhookEndpointEnabled(ctx context.Context, id int64, enabled bool) (*APIWebhookEndpoint, error)
	// DeleteAPIWebhookEndpoint removes it with its deliveries.
	DeleteAPIWebhookEndpoint(ctx context.Context, id int64) (*APIWebhookEndpoint, error)
	// EnqueueAPIWebhookEvent queues ev for one endpoint (the test event).
	EnqueueAPIWebhookEvent(ctx context.Context, endpointID int64, ev *APIEvent) error
	// APIWebhookDeliveries lists an endpoint's latest deliveries.
	APIWebhookDeliveries(ctx context.Context, endpointID int64, limit int) ([]*APIWebhookDelivery, error)

	// DispatchAPIEvents reads up to limit rows of source after its cursor
	// (only rows whose transaction is older than every running one), asks
	// derive for their events, queues one delivery per event and endpoint
	// that wants it, and advances the cursor, all in one transaction. It
	// returns how many rows it read; 0 also when another instance holds
	// the source.
	DispatchAPIEvents(ctx context.Context, source string, limit int, derive func(rows []*APISourceRow) []*APIEvent) (int, error)
	// ClaimAPIWebhookDeliveries takes up to limit due deliveries for one
	// attempt each (FOR UPDATE SKIP LOCKED), at most one per endpoint, and
	// leases them until now+lease.
	ClaimAPIWebhookDeliveries(ctx context.Context, limit int, now time.Time, lease time.Duration) ([]*APIWebhookDelivery, error)
	// CompleteAPIWebhookDelivery records an attempt on the delivery and its
	// endpoint.
	CompleteAPIWebhookDelivery(ctx context.Context, d *APIWebhookDelivery, r APIWebhookResult, now time.Time) error
}

// NewAPITestEvent is the event of the admin page's "Send test event"
// button: signed and delivered like any other, about no conversation, with
// a fresh id each time.
func NewAPITestEvent(now time.Time) *APIEvent {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &APIEvent{V: APIEventVersion, ID: "test_" + hex.EncodeToString(b), Type: APIEventTest, At: now.UTC(),
		Data: map[string]any{"message": "This is a test event from Baton."}}
}
