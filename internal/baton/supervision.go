package baton

import (
	"context"
	"time"
)

// AuditQuery selects audit log lines for the supervisors' page and its
// CSV export; zero fields do not filter.
type AuditQuery struct {
	Action  string // exact action, e.g. "reply", or a prefix ending in "." ("handover.")
	ActorID int64  // 0: anyone (system lines included)
	Subject string // exact subject, e.g. "conversation:12"
	From    time.Time
	To      time.Time // exclusive
	Limit   int
	Offset  int
}

// AuditRecord is one stored audit line, with the actor's name resolved so
// the page and the export need no second look-up.
type AuditRecord struct {
	ID        int64
	At        time.Time
	ActorID   *int64
	ActorName string // "" for the system
	Action    string
	Subject   string
	Detail    string // JSON object
}

// AuditReader reads the audit log back; only supervisors and admins reach
// it, through the web layer.
type AuditReader interface {
	// AuditEntries returns the lines matching q, newest first, and how many
	// match in all (for pagination).
	AuditEntries(ctx context.Context, q AuditQuery) ([]*AuditRecord, int, error)
}

// AgentLoad is one console user's share of the work for the dashboard.
type AgentLoad struct {
	UserID int64
	Name   string
	Role   Role
	// Assigned counts open conversations assigned to the agent.
	Assigned int
	// RepliesLastHour counts messages the agent sent in the last hour: the
	// load measure while nobody assigns conversations.
	RepliesLastHour int
	LastActiveAt    *time.Time
}

// HourCount is a count of events in the hour starting at Hour.
type HourCount struct {
	Hour time.Time
	In   int // handovers to Baton
	Out  int // handovers away from Baton
}

// TeamStats is the team dashboard: who carries what, how long people
// wait, how fast they are answered, and how conversations end.
type TeamStats struct {
	At     time.Time
	Agents []AgentLoad
	// Queue counts open conversations no agent has answered yet; OldestWait
	// is how long the oldest of them has waited (0 when the queue is empty).
	Queue      int
	OldestWait time.Duration
	Open       int
	// Hours are the last 24 hours, oldest first.
	Hours []HourCount
	// MedianFirstResponse: from a pass to Baton to the first agent message
	// after it; MedianHandle: from that pass to the thread leaving Baton.
	// Over the last 7 days; 0 when nothing was measured.
	MedianFirstResponse time.Duration
	MedianHandle        time.Duration
	// Outcomes counts Done outcomes of the last 7 days by outcome.
	Outcomes map[string]int
}

// StatsService computes the team dashboard.
type StatsService interface {
	TeamStats(ctx context.Context, now time.Time) (*TeamStats, error)
}

// SearchHit is one message matching a full-text search, with a snippet
// whose matches are marked by SnippetStart and SnippetStop.
type SearchHit struct {
	ConversationID int64
	MessageID      int64
	Name           string
	PSID           string
	Status         Status
	Snippet        string
	Rank           float64
	TimestampMS    int64
}

// Snippet match delimiters: private-use characters that no message text
// is expected to carry, so the UI can escape the text and mark the matches
// itself rather than trust HTML built in SQL.
const (
	SnippetStart = "\uE000"
	SnippetStop  = "\uE001"
)

// SearchOptions narrows a message search.
type SearchOptions struct {
	// IncludeBot also searches threads Baton was never handed (supervisors).
	IncludeBot bool
	Limit      int
}

// Searcher finds messages by full-text search.
type Searcher interface {
	// SearchMessages returns messages matching q (web-search syntax: words,
	// "phrases", -exclusions, or), best first. EINVALID for an empty query.
	SearchMessages(ctx context.Context, q string, o SearchOptions) ([]*SearchHit, error)
}

// APIToken is a personal API token; the secret itself is shown once at
// creation and only its SHA-256 is stored.
type APIToken struct {
	ID         int64
	UserID     int64
	Name       string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// APITokenService stores personal API tokens. Errors: ENOTFOUND for a
// missing token, EUNAUTHORIZED when a secret matches no live token.
type APITokenService interface {
	// CreateAPIToken stores a new token for userID and returns it with its
	// secret, which is never retrievable again.
	CreateAPIToken(ctx context.Context, userID int64, name string) (*APIToken, string, error)
	// APITokens lists a user's tokens (userID 0: everyone's), newest first.
	APITokens(ctx context.Context, userID int64) ([]*APIToken, error)
	// RevokeAPIToken revokes a token; ownerID 0 lets an admin revoke any,
	// otherwise the token must belong to ownerID (ENOTFOUND if not).
	RevokeAPIToken(ctx context.Context, id, ownerID int64) (*APIToken, error)
	// AuthenticateAPIToken finds the enabled user of a live token and stamps
	// its last use.
	AuthenticateAPIToken(ctx context.Context, secret string) (*User, *APIToken, error)
}
