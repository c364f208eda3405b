package templates

// InboxProps is the inbox screen: folders, search, the conversation list,
// and (when one is open) the conversation beside it.
type InboxProps struct {
	Page         Page
	Folder       string
	Folders      []FolderLink
	Search       string
	Items        []ListItem
	Conversation *ConversationProps
}

// FolderLink is one tab of the inbox.
type FolderLink struct {
	Key, Label, Href string
	Current          bool
}

// ListItem is one row of the conversation list.
type ListItem struct {
	ID          int64
	Href        string
	Name        string
	Initials    string
	Pic         string
	LastMessage string
	Time        string
	TimeISO     string
	Unread      int
	Owner       Badge
	Window      Badge
	Status      string // "requested", "ignored", "closing", "" …
	Selected    bool
}

// Badge is a small label with a style class.
type Badge struct {
	Label, Class, Title string
}

// ConversationProps is the open conversation.
type ConversationProps struct {
	ID            int64
	Seq           int64
	Name          string
	Initials      string
	Pic           string
	PSID          string
	Owner         Badge
	OwnerSentence string
	OwnerUnsure   bool
	Window        Badge
	Handover      *HandoverReason
	Entries       []Entry
	OlderHref     string
	Outbox        []OutboxView
	Composer      ComposerProps
	Actions       ActionsProps
	Ownership     []OwnershipEntry
	CSRFToken     string
}

// HandoverReason is the bot's metadata of the pass that gave Baton the
// thread, shown nicely when it is JSON.
type HandoverReason struct {
	When     string
	IsJSON   bool
	Raw      string
	Reason   string
	Summary  string
	Team     string
	Priority string
	Agent    string
	Other    [][2]string
}

// Entry is one line of the conversation: a message, a divider (a
// handover) or a section heading.
type Entry struct {
	Message *MessageView
	Divider *DividerView
	Section string
}

// MessageView is one message bubble.
type MessageView struct {
	ID          int64
	Out         bool   // from the Page (bot, agent, another app)
	Class       string // user | bot | agent | inbox | app
	Author      string
	Text        string
	Attachments []AttachmentView
	Time        string
	TimeISO     string
	Receipt     string // "Seen", "Delivered", ""
	Reaction    string
	Postback    bool
	QuickReply  string
	BotPart     bool
}

// AttachmentView is one attachment, shown by type.
type AttachmentView struct {
	Type        string
	URL         string
	Title       string
	IsImage     bool
	Unsupported bool
}

// DividerView marks a handover in the conversation.
type DividerView struct {
	Label    string
	Detail   string
	Metadata string
	Class    string
	Time     string
}

// OutboxView is an agent's message or action not yet confirmed.
type OutboxView struct {
	ID       int64
	Kind     string
	Text     string
	Label    string
	Error    string
	Failed   bool
	Pending  bool
	CanRetry bool
}

// ComposerProps is the reply box, or the reason there is none.
type ComposerProps struct {
	ConversationID int64
	CanReply       bool
	Reason         string
	WindowText     string
	WindowTier     string
	// State changes whenever the composer must be re-rendered; while it
	// stays the same, live updates keep what the agent is typing.
	State     string
	CSRFToken string
}

// ActionsProps are Done and Request control.
type ActionsProps struct {
	ConversationID int64
	CanDone        bool
	Outcomes       []string
	DonePreview    string
	CanRequest     bool
	Requested      string // "" or a sentence about the pending request
	RequestIgnored bool
	CanAbandon     bool
	CSRFToken      string
}

// OwnershipEntry is one line of the ownership timeline.
type OwnershipEntry struct {
	Time     string
	Label    string
	Metadata string
}
