package baton

import (
	"encoding/json"
	"time"
)

// Status is where a conversation stands in Baton's own lifecycle, apart
// from who owns the Messenger thread.
type Status string

const (
	// StatusBot: Baton has not been handed this thread (the bot, another app
	// or nobody owns it); Baton only records the standby history.
	StatusBot Status = "bot"
	// StatusOpen: Baton owns the thread; it is in the agents' inbox.
	StatusOpen Status = "open"
	// StatusClosed: Baton owned it and no longer does; CloseReason says why.
	StatusClosed Status = "closed"
)

// Close reasons of a conversation that left Baton.
const (
	CloseDone      = "done"       // an agent clicked Done
	CloseTakenBack = "taken_back" // the Primary took control
	CloseExpired   = "expired"    // the platform released the idle thread
	CloseIdle      = "idle"       // Baton's idle auto-return passed it back
	ClosePassed    = "passed"     // control moved to another app some other way
)

// OwnerKind names who holds thread control, as Baton understands it.
type OwnerKind string

const (
	OwnerBaton     OwnerKind = "baton"
	OwnerBot       OwnerKind = "bot"
	OwnerPageInbox OwnerKind = "page_inbox"
	OwnerOther     OwnerKind = "other"
	OwnerIdle      OwnerKind = "idle"
	OwnerUnknown   OwnerKind = "unknown"
)

// Page is what Baton knows of a connected Facebook Page: its own app id,
// the Primary's, and the role app_roles gave Baton.
type Page struct {
	PageID       string
	BatonAppID   string
	PrimaryAppID string
	// PrimaryPinned: PrimaryAppID was configured (environment or admin),
	// so app_roles and handovers do not replace it (PROTOCOL.md §13.3).
	PrimaryPinned bool
	BatonRole     string // "secondary_receiver", "primary_receiver" or "" (none)
}

// OwnerKindOf classifies an owner app id for page p.
func (p Page) OwnerKindOf(appID string) OwnerKind {
	switch {
	case appID == "":
		return OwnerIdle
	case appID == p.BatonAppID:
		return OwnerBaton
	case appID == PageInboxAppID:
		return OwnerPageInbox
	case appID == p.PrimaryAppID:
		return OwnerBot
	}
	return OwnerOther
}

// PageInboxAppID is Meta's Page Inbox pseudo-app (PROTOCOL.md §12),
// repeated here so the domain needs no wire package.
const PageInboxAppID = "263902037430900"

// Conversation is one (page, person) thread as Baton tracks it.
type Conversation struct {
	ID     int64
	PageID string
	PSID   string

	// OwnerAppID is the app holding thread control; "" when idle or unknown.
	OwnerAppID string
	// OwnerUnsure is set when an event arrived on a channel that contradicts
	// OwnerAppID; the thread-owner API settles it.
	OwnerUnsure bool
	// OwnerTS is the timestamp (epoch ms) of the newest handover event
	// applied; older ones change nothing (events may arrive out of order).
	OwnerTS int64

	Status      Status
	CloseReason string
	OpenedAt    *time.Time
	ClosedAt    *time.Time
	// HandoverMetadata is the metadata of the pass that gave Baton the thread.
	HandoverMetadata string

	// LastUserEventMS is the newest user message, postback or referral
	// (epoch ms), on either channel: the messaging window's clock.
	LastUserEventMS    int64
	LastMessageText    string
	LastMessageMS      int64
	Unread             int
	ReadWatermark      int64
	DeliveredWatermark int64

	FirstName  string
	LastName   string
	ProfilePic string

	AssignedUserID *int64
	// RequestedAt is set while a request_thread_control is pending.
	RequestedAt   *time.Time
	RequestReason string
	// Closing: Done was clicked and the pass is in the outbox.
	Closing     bool
	DoneOutcome string
	// ProfileChecked: the User Profile API was asked once already.
	ProfileChecked bool
	Seq            int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Name is the person's display name, with a fallback for unknown profiles.
func (c *Conversation) Name() string {
	switch {
	case c.FirstName != "" && c.LastName != "":
		return c.FirstName + " " + c.LastName
	case c.FirstName != "":
		return c.FirstName
	case c.LastName != "":
		return c.LastName
	}
	return "Person " + lastN(c.PSID, 4)
}

func lastN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// Author says who wrote a message.
type Author string

const (
	AuthorUser      Author = "user"
	AuthorBot       Author = "bot"
	AuthorAgent     Author = "agent" // sent by Baton
	AuthorPageInbox Author = "page_inbox"
	AuthorApp       Author = "app" // another app
)

// Part says which part of the conversation a message belongs to.
type Part string

const (
	// PartBot is history recorded while Baton did not own the thread.
	PartBot Part = "bot"
	// PartLive is the exchange while Baton owns the thread.
	PartLive Part = "live"
)

// Message is a message in a conversation: the person's, or the Page's
// (an echo from the bot, Baton or another app).
type Message struct {
	ID             int64
	ConversationID int64
	MID            string
	Author         Author
	AppID          string
	Kind           string // "message" or "postback"
	Text           string
	Attachments    json.RawMessage // the wire attachments array, kept verbatim
	QuickReply     string
	Part           Part
	TimestampMS    int64
	OutboxID       *int64
	Reaction       string
	CreatedAt      time.Time
}

// Handover is one entry of a conversation's ownership timeline.
type Handover struct {
	ID             int64
	ConversationID int64
	// Kind: pass, take, request, app_roles, release, expired, inferred, done, request_sent, idle_return.
	Kind        string
	FromAppID   string
	ToAppID     string
	Metadata    string
	TimestampMS int64
	ActorUserID *int64
	CreatedAt   time.Time
}
