package baton

import "encoding/json"

// EventKind is the kind of one webhook event (PROTOCOL.md §5).
type EventKind string

const (
	KindMessage  EventKind = "message"
	KindEcho     EventKind = "echo"
	KindPostback EventKind = "postback"
	KindRead     EventKind = "read"
	KindDelivery EventKind = "delivery"
	KindReaction EventKind = "reaction"
	KindReferral EventKind = "referral"
	KindOptin    EventKind = "optin"
	KindPass     EventKind = "pass_thread_control"
	KindTake     EventKind = "take_thread_control"
	KindRequest  EventKind = "request_thread_control"
	KindAppRoles EventKind = "app_roles"
	KindUnknown  EventKind = "unknown"
)

// Channel is the array an event arrived in: the owner's or standby.
type Channel string

const (
	ChannelMessaging Channel = "messaging"
	ChannelStandby   Channel = "standby"
)

// Event is one parsed webhook event. Ids are exact decimal text.
type Event struct {
	PageID  string
	Channel Channel
	Kind    EventKind
	// Entry and Index locate the event in its delivery's raw body.
	Entry, Index int
	// PSID is the thread key: the recipient for echoes, else the sender.
	// Empty for events with no person (app_roles) or only a user_ref.
	PSID        string
	UserRef     string
	TimestampMS int64
	// DedupeKey identifies the event per Page (PROTOCOL.md §4.5).
	DedupeKey string
	Raw       json.RawMessage

	Message  *EventMessage
	Postback *EventPostback
	Receipt  *EventReceipt
	Reaction *EventReaction
	Handover *EventHandover
	AppRoles map[string][]string
}

// EventMessage is a message or an echo.
type EventMessage struct {
	MID         string
	Text        string
	Attachments json.RawMessage
	QuickReply  string
	ReplyTo     string
	IsEcho      bool
	AppID       string // echoes: the sending app
	Metadata    string // echoes: what the sender set
}

// EventPostback is a tapped button.
type EventPostback struct {
	MID, Title, Payload string
}

// EventReceipt is a read or a delivery, up to a watermark.
type EventReceipt struct {
	Watermark int64
	MIDs      []string
}

// EventReaction is a reaction to a message.
type EventReaction struct {
	MID, Reaction, Emoji, Action string
}

// EventHandover is a pass, take or request.
type EventHandover struct {
	PreviousOwner  string // "" when absent or null
	NewOwner       string
	RequestedOwner string
	Metadata       string
}

// IsUserActivity reports whether the event refreshes the messaging window
// (PROTOCOL.md §11): a user message, a postback or a referral.
func (e *Event) IsUserActivity() bool {
	return e.Kind == KindMessage || e.Kind == KindPostback || e.Kind == KindReferral
}
