package baton

import (
	"context"
	"strings"
	"time"
)

// AgentStatus is whether a console user takes new conversations. The
// auto-assigner gives work only to online agents, so an agent who steps
// away stops receiving handovers without anyone editing a rota.
type AgentStatus string

const (
	AgentOnline  AgentStatus = "online"
	AgentAway    AgentStatus = "away"
	AgentOffline AgentStatus = "offline"
)

// AgentStatuses lists the statuses in the order forms show them.
var AgentStatuses = []AgentStatus{AgentOnline, AgentAway, AgentOffline}

// ParseAgentStatus reads a status from a form; anything else is refused
// so that a typo never makes an agent silently unavailable.
func ParseAgentStatus(s string) (AgentStatus, error) {
	st := AgentStatus(strings.ToLower(strings.TrimSpace(s)))
	for _, v := range AgentStatuses {
		if st == v {
			return st, nil
		}
	}
	return "", Errorf(EINVALID, "Unknown status %q: use online, away or offline.", s)
}

// FolderUnassigned is the queue: open conversations nobody has taken.
const FolderUnassigned Folder = "unassigned"

// FolderMentions lists conversations where the viewer was @mentioned in a
// note they have not seen yet.
const FolderMentions Folder = "mentions"

// Sort orders of the conversation list.
const (
	SortNewest  = "newest"  // newest message first
	SortWaiting = "waiting" // the person spoke last, longest wait first
	SortWindow  = "window"  // messaging window closing soonest first
)

// Agent is a console user as assignment sees them: who they are, the
// status they set, their cap and their current load.
type Agent struct {
	UserID int64
	Name   string
	Role   Role
	// Status is as set; an online agent idle for long is shown away
	// (conversation.EffectiveStatus).
	Status AgentStatus
	// Cap is the most open conversations auto-assign gives them; nil
	// means the team default.
	Cap            *int
	LastActiveAt   *time.Time
	LastAssignedAt *time.Time
	// Open counts the open conversations assigned to them now.
	Open int
}

// FolderCounts are the numbers on the inbox's folder tabs.
type FolderCounts map[Folder]int

// ListExtra is what a list row shows beyond the conversation itself.
type ListExtra struct {
	LastAuthor Author
	LastAppID  string
	Tags       []string
}

// Tag is a label on conversations, created by typing it.
type Tag struct {
	ID   int64
	Name string
}

// Note is an internal note in a conversation: seen by the team, never sent
// to the person.
type Note struct {
	ID             int64
	ConversationID int64
	AuthorUserID   *int64
	AuthorName     string
	Text           string
	CreatedAt      time.Time
	// Mentions are the users the note @mentions.
	Mentions []int64
}

// CannedReply is a saved answer, inserted with "/" in the composer.
type CannedReply struct {
	ID        int64
	Shortcut  string
	Body      string
	CreatedBy *int64
	UpdatedAt time.Time
}

// TeamStore is the storage behind assignment, tags, notes and canned
// replies.
type TeamStore interface {
	// Agents lists enabled users with their status, cap and load.
	Agents(ctx context.Context) ([]*Agent, error)
	SetAgentStatus(ctx context.Context, userID int64, s AgentStatus) error
	// SetAgentCap sets a user's cap; nil returns them to the default.
	SetAgentCap(ctx context.Context, userID int64, cap *int) error
	// TouchAgent records activity (for "away after idle"), at most once a
	// minute per user.
	TouchAgent(ctx context.Context, userID int64, at time.Time) error
	// AutoAssign hands unassigned open conversations, oldest first, to the
	// agents pick chooses (given the team's current loads), under a lock
	// every instance shares, stamping each chosen agent's LastAssignedAt
	// with now and bumping the conversation's seq. It stops when pick
	// finds nobody; on an error it returns those already assigned.
	AutoAssign(ctx context.Context, now time.Time, pick func(agents []*Agent) (int64, bool)) ([]*Conversation, error)
	// ListExtras returns, for the listed conversations, who wrote the last
	// message and their tags.
	ListExtras(ctx context.Context, ids []int64) (map[int64]*ListExtra, error)
	// CountConversations counts every folder for the viewer, and in each
	// the conversations with unread messages.
	CountConversations(ctx context.Context, userID int64) (total, unread FolderCounts, err error)

	Tags(ctx context.Context) ([]*Tag, error)
	TagsOf(ctx context.Context, conversationID int64) ([]*Tag, error)
	// AddTag creates the tag if new and applies it; it bumps the seq.
	AddTag(ctx context.Context, conversationID int64, name string) (*Tag, error)
	// RemoveTag takes a tag off; it bumps the seq.
	RemoveTag(ctx context.Context, conversationID int64, name string) error

	// AddNote stores a note and its mentions and bumps the seq.
	AddNote(ctx context.Context, n *Note) error
	Notes(ctx context.Context, conversationID int64) ([]*Note, error)
	// SeeMentions marks the user's mentions in a conversation as seen.
	SeeMentions(ctx context.Context, userID, conversationID int64, at time.Time) error

	CannedReplies(ctx context.Context) ([]*CannedReply, error)
	SaveCannedReply(ctx context.Context, r *CannedReply) error
	DeleteCannedReply(ctx context.Context, id int64) error
}
