package templates

import "strconv"

// InboxProps is the inbox screen: folders, search, the conversation list,
// and (when one is open) the conversation beside it.
type InboxProps struct {
	Page         Page
	Folder       string
	Search       string
	List         ListPanelProps
	Conversation *ConversationProps
}

// ListPanelProps is the live part of the inbox column: folder tabs with
// their counts, the agent's status, the sort and tag filter, and the
// list. Live updates re-render all of it, so the counts stay current.
type ListPanelProps struct {
	Folder  string
	Folders []FolderLink
	Search  string
	Sort    string
	Sorts   []Option
	Tag     string
	Tags    []Option
	Items   []ListItem
	// Me is the viewer's own status form.
	Me AgentRow
	// TeamLink: the viewer may open the team page (supervisors).
	TeamLink  bool
	CSRFToken string
}

// Option is one choice of a select.
type Option struct {
	Value, Label string
	Selected     bool
}

// FolderLink is one tab of the inbox.
type FolderLink struct {
	Key, Label, Href string
	Current          bool
	Count            int
	// Unread: of Count, the conversations with messages no agent has read.
	Unread int
}

// AgentRow is a team member: status, load and cap.
type AgentRow struct {
	ID      int64
	Name    string
	Handle  string
	Status  string
	Load    int
	Cap     int
	OwnCap  string // "" when on the default
	Options []Option
}

// ListItem is one row of the conversation list.
type ListItem struct {
	ID          int64
	Href        string
	Name        string
	Initials    string
	Pic         string
	LastMessage string
	// LastAuthor prefixes the last message ("Bot", "Agent"); "" for the
	// person's own words.
	LastAuthor string
	Assignee   string
	Tags       []string
	Time       string
	TimeISO    string
	Unread     int
	Owner      Badge
	Window     Badge
	Status     string // "requested", "ignored", "closing", "" …
	Selected   bool
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
	// Viewers says which other agents have the conversation open.
	Viewers   string
	Window    Badge
	Handover  *HandoverReason
	Entries   []Entry
	OlderHref string
	Outbox    []OutboxView
	Composer  ComposerProps
	Actions   ActionsProps
	Ownership []OwnershipEntry
	CSRFToken string
	Assign    AssignProps
	Tags      TagsProps
	Contact   ContactProps
	// IdleWarning is the idle auto-return warning, "" when none.
	IdleWarning string
}

// AssignProps is the assignment control in the conversation header.
type AssignProps struct {
	ConversationID int64
	Assignee       string // "" when unassigned
	Mine           bool
	CanClaim       bool
	CanRelease     bool
	// CanAssign: a supervisor picks anyone in Agents.
	CanAssign bool
	Agents    []Option
	CSRFToken string
}

// TagsProps are the conversation's tags and the form to add one.
type TagsProps struct {
	ConversationID int64
	Tags           []string
	Known          []string
	CSRFToken      string
}

// ContactProps is the contact panel: who the person is and how their past
// handovers ended.
type ContactProps struct {
	Name      string
	Pic       string
	Initials  string
	PSID      string
	FirstSeen string
	Outcomes  []PastOutcome
}

// PastOutcome is one earlier hand-back of this person's thread.
type PastOutcome struct {
	Time    string
	Outcome string
	Note    string
}

// NoteView is an internal note in the thread.
type NoteView struct {
	ID     int64
	Author string
	Parts  []NotePart
	Time   string
	// MentionsMe: the viewer is @mentioned.
	MentionsMe bool
}

// NotePart is a run of a note's text, a mention or not.
type NotePart struct {
	Text    string
	Mention bool
}

// CannedOption is a canned reply ready to insert, variables filled.
type CannedOption struct {
	Shortcut string
	Text     string
}

// CannedPageProps is the canned replies admin page.
type CannedPageProps struct {
	Page    Page
	Replies []CannedRow
	Error   string
}

// CannedRow is one canned reply on its page.
type CannedRow struct {
	ID       int64
	Shortcut string
	Body     string
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
	Note    *NoteView
	Section string
	// At orders entries (epoch ms); notes are merged in by it.
	At int64
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
	// Canned are the canned replies, inserted with "/".
	Canned []CannedOption
	// CanNote shows the internal note form (also when replying is not
	// possible: the team may still talk about the conversation).
	CanNote bool
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

// folderTitle is a folder tab's tooltip: its count and, when some are, how
// many are unread.
func folderTitle(f FolderLink) string {
	t := strconv.Itoa(f.Count) + " conversations"
	if f.Unread > 0 {
		t += ", " + strconv.Itoa(f.Unread) + " unread"
	}
	return t
}
