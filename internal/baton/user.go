package baton

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"
)

// ERATELIMITED is the code of a refusal because of too many recent
// failures (sign-in attempts); the web layer answers 429 so that a person
// and a script both know to wait rather than retry.
const ERATELIMITED = "rate_limited"

// Role is what a console user may do. Roles are ordered: each includes
// everything the one below it may do, so a route needs only a minimum.
type Role string

const (
	// RoleAgent handles the conversations handed to Baton.
	RoleAgent Role = "agent"
	// RoleSupervisor also sees bot-owned threads, requests control and
	// reassigns.
	RoleSupervisor Role = "supervisor"
	// RoleAdmin also manages users and Page settings.
	RoleAdmin Role = "admin"
)

// Roles lists every role from least to most privileged, for forms and
// test matrices.
var Roles = []Role{RoleAgent, RoleSupervisor, RoleAdmin}

func (r Role) rank() int {
	switch r {
	case RoleAgent:
		return 1
	case RoleSupervisor:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the three roles; anything else (a
// typo in a form or a tampered cookie) must never grant access.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r includes everything min may do. An invalid
// role is below every valid one, and the empty minimum (a public route) is
// met by anyone, even a signed-out visitor's empty role.
func (r Role) AtLeast(min Role) bool {
	if min == "" {
		return true
	}
	return r.rank() >= min.rank() && min.Valid()
}

// ParseRole reads a role typed by a person (CLI, form), case-insensitively.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if !r.Valid() {
		return "", Errorf(EINVALID, "Unknown role %q: use agent, supervisor or admin.", s)
	}
	return r, nil
}

// User is a person who signs in to the console.
type User struct {
	ID    int64
	Email string // stored lower-case; unique
	Name  string
	Role  Role
	// Disabled users cannot sign in and have no sessions.
	Disabled bool
	// PasswordHash is the bcrypt hash; it never leaves storage and the
	// account rules (never rendered, never logged).
	PasswordHash string `json:"-"`
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LastLoginAt  *time.Time
	// SessionsEndedAt voids every session signed in before it; nil when
	// the user never signed out everywhere nor was disabled.
	SessionsEndedAt *time.Time
}

// LogValue keeps the hash out of structured logs even when a whole User is
// logged by mistake.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(slog.Int64("id", u.ID), slog.String("email", u.Email), slog.String("role", string(u.Role)), slog.Bool("disabled", u.Disabled))
}

// UserUpdate changes some fields of a user; nil fields stay as they are.
type UserUpdate struct {
	Name         *string
	Role         *Role
	Disabled     *bool
	PasswordHash *string
}

// LoginAttempt is one sign-in try, kept for the audit trail and the rate
// limiter. Email is what was typed (lower-cased), whether or not a user
// has it.
type LoginAttempt struct {
	At      time.Time
	Email   string
	IP      string
	UserID  *int64
	Success bool
	// Reason of a failure, for the log only ("bad_password", "unknown",
	// "disabled", "rate_limited"); never shown to the person.
	Reason string
}

// UserService stores console users, their sign-in attempts and sessions.
// It is called by internal/account (rules) and cmd/baton (CLI); the web
// layer reaches it through account. Errors: ENOTFOUND for a missing user,
// ECONFLICT for an email already taken, EINVALID for bad data.
type UserService interface {
	// CreateUser inserts u (Email, Name, Role, PasswordHash, Disabled) and
	// sets its ID and timestamps.
	CreateUser(ctx context.Context, u *User) error
	// UserByID returns a user or ENOTFOUND.
	UserByID(ctx context.Context, id int64) (*User, error)
	// UserByEmail finds a user by email, case-insensitively, or ENOTFOUND.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// Users lists every user by email.
	Users(ctx context.Context) ([]*User, error)
	// UpdateUser applies upd and returns the user as stored. Disabling a
	// user also ends all of their sessions (as DeleteUserSessions), in the
	// same transaction.
	UpdateUser(ctx context.Context, id int64, upd UserUpdate) (*User, error)
	// CountActiveAdmins counts enabled admins, so the last one is never
	// locked out.
	CountActiveAdmins(ctx context.Context) (int, error)
	// RecordLoginAttempt logs one attempt (and stamps a success on the user).
	RecordLoginAttempt(ctx context.Context, a LoginAttempt) error
	// LoginFailures counts failed attempts since a time, for an email and
	// for an IP address; attempts refused by the rate limiter itself are
	// not counted, so a lock-out ends one window after the last real try.
	LoginFailures(ctx context.Context, email, ip string, since time.Time) (byEmail, byIP int, err error)
	// DeleteUserSessions ends every session of a user, voids any signed in
	// before now (SessionsEndedAt) and returns how many there were.
	DeleteUserSessions(ctx context.Context, userID int64) (int, error)
}

// AuditEntry is one line of the audit log: who did what to what.
type AuditEntry struct {
	At      time.Time
	ActorID *int64 // nil: the system or the CLI
	Action  string // e.g. "user.create", "user.disable", "page.settings"
	Subject string // e.g. "user:12", "page:123"
	Detail  map[string]any
}

// DetailJSON is Detail as JSON, "{}" when empty.
func (e AuditEntry) DetailJSON() []byte {
	if len(e.Detail) == 0 {
		return []byte("{}")
	}
	b, err := json.Marshal(e.Detail)
	if err != nil {
		return []byte("{}")
	}
	return b
}

// AuditLog records actions of users and the system, append-only.
type AuditLog interface {
	Audit(ctx context.Context, e AuditEntry) error
}
