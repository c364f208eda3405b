package account

import (
	"context"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

// Limits bound failed sign-ins within a sliding window. Per account stops
// guessing one password; per IP stops spraying many accounts from one
// place, with more room because a team may share one office address.
type Limits struct {
	PerEmail int
	PerIP    int
	Window   time.Duration
}

// DefaultLimits: 10 failures per account and 30 per address in 15 minutes.
var DefaultLimits = Limits{PerEmail: 10, PerIP: 30, Window: 15 * time.Minute}

// Blocked reports whether the failure counts have reached a limit.
func (l Limits) Blocked(byEmail, byIP int) bool {
	return (l.PerEmail > 0 && byEmail >= l.PerEmail) || (l.PerIP > 0 && byIP >= l.PerIP)
}

// Errors of Login. Both messages are deliberately generic: whether the
// email exists, the account is disabled or the password is wrong, a person
// (or an attacker) sees the same words.
var (
	ErrBadCredentials = &baton.Error{Code: baton.EUNAUTHORIZED, Message: "Wrong email or password."}
	ErrRateLimited    = &baton.Error{Code: baton.ERATELIMITED, Message: "Too many failed sign-in attempts. Wait 15 minutes and try again."}
)

// Config is what a Service needs.
type Config struct {
	Users  baton.UserService
	Audit  baton.AuditLog // optional
	Hasher *Hasher
	Limits Limits // zero: DefaultLimits
	Now    func() time.Time
	Logger *slog.Logger
}

// Service applies the account rules over storage. The rate limiter counts
// failures in the login_attempts table rather than in memory: every
// instance behind a load balancer sees the same counts, a restart does not
// reset them, and the same rows are the audit trail of every attempt.
type Service struct {
	cfg Config
}

// New returns the account service.
func New(cfg Config) *Service {
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg}
}

// Limits returns the limits in force (for messages and Retry-After).
func (s *Service) Limits() Limits { return s.cfg.Limits }

// Login checks an email and password from ip. It records the attempt,
// refuses with ErrRateLimited once a limit is reached (before looking at
// the password, so guessing stops), and otherwise answers either the user
// or ErrBadCredentials in about the same time whether or not the email
// exists. The password is never logged.
func (s *Service) Login(ctx context.Context, email, password, ip string) (*baton.User, error) {
	email = normEmail(email)
	now := s.cfg.Now()
	byEmail, byIP, err := s.cfg.Users.LoginFailures(ctx, email, ip, now.Add(-s.cfg.Limits.Window))
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if s.cfg.Limits.Blocked(byEmail, byIP) {
		s.record(ctx, baton.LoginAttempt{At: now, Email: email, IP: ip, Reason: "rate_limited"})
		return nil, ErrRateLimited
	}
	u, err := s.cfg.Users.UserByEmail(ctx, email)
	if err != nil && baton.ErrorCode(err) != baton.ENOTFOUND {
		return nil, fmt.Errorf("login: %w", err)
	}
	reason := ""
	switch {
	case u == nil:
		s.cfg.Hasher.VerifyDummy(password)
		reason = "unknown_email"
	case !s.cfg.Hasher.Verify(u.PasswordHash, password):
		reason = "bad_password"
	case u.Disabled:
		reason = "disabled"
	}
	a := baton.LoginAttempt{At: now, Email: email, IP: ip, Success: reason == "", Reason: reason}
	if u != nil {
		a.UserID = &u.ID
	}
	s.record(ctx, a)
	if reason != "" {
		return nil, ErrBadCredentials
	}
	return u, nil
}

func (s *Service) record(ctx context.Context, a baton.LoginAttempt) {
	level := slog.LevelInfo
	if !a.Success {
		level = slog.LevelWarn
	}
	s.cfg.Logger.Log(ctx, level, "sign-in attempt", "email", a.Email, "ip", a.IP, "success", a.Success, "reason", a.Reason)
	if err := s.cfg.Users.RecordLoginAttempt(ctx, a); err != nil {
		s.cfg.Logger.Error("record sign-in attempt", "err", err)
	}
}

// NewUser is a user to create, with a plain password that is hashed here.
type NewUser struct {
	Email    string
	Name     string
	Role     baton.Role
	Password string
}

// CreateUser validates and stores a new user. actor is the admin doing it
// (nil from the CLI or the bootstrap).
func (s *Service) CreateUser(ctx context.Context, actor *baton.User, n NewUser) (*baton.User, error) {
	email := normEmail(n.Email)
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || a.Name != "" {
		return nil, baton.Errorf(baton.EINVALID, "Enter a valid email address.")
	}
	if !n.Role.Valid() {
		return nil, baton.Errorf(baton.EINVALID, "Choose a role: agent, supervisor or admin.")
	}
	name := strings.TrimSpace(n.Name)
	if name == "" {
		name = strings.SplitN(email, "@", 2)[0]
	}
	if len(name) > 200 {
		return nil, baton.Errorf(baton.EINVALID, "The name is too long.")
	}
	hash, err := s.cfg.Hasher.Hash(n.Password)
	if err != nil {
		return nil, err
	}
	u := &baton.User{Email: email, Name: name, Role: n.Role, PasswordHash: hash}
	if err := s.cfg.Users.CreateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	s.audit(ctx, actor, "user.create", u, map[string]any{"email": u.Email, "role": string(u.Role)})
	return u, nil
}

// EnsureAdmin creates the bootstrap admin when no user has that email; an
// existing account is left as it is (its password may have been changed
// since). It reports whether it created one.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) (bool, error) {
	_, err := s.cfg.Users.UserByEmail(ctx, email)
	if err == nil {
		return false, nil
	}
	if baton.ErrorCode(err) != baton.ENOTFOUND {
		return false, fmt.Errorf("bootstrap admin: %w", err)
	}
	if _, err := s.CreateUser(ctx, nil, NewUser{Email: email, Name: "Admin", Role: baton.RoleAdmin, Password: password}); err != nil {
		if baton.ErrorCode(err) == baton.ECONFLICT {
			return false, nil // another instance created it first
		}
		return false, fmt.Errorf("bootstrap admin: %w", err)
	}
	return true, nil
}

// SetRole changes a user's role; the last enabled admin keeps theirs.
func (s *Service) SetRole(ctx context.Context, actor *baton.User, id int64, role baton.Role) (*baton.User, error) {
	if !role.Valid() {
		return nil, baton.Errorf(baton.EINVALID, "Choose a role: agent, supervisor or admin.")
	}
	u, err := s.cfg.Users.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.Role == role {
		return u, nil
	}
	if u.Role == baton.RoleAdmin && !u.Disabled {
		if err := s.keepAnAdmin(ctx); err != nil {
			return nil, err
		}
	}
	u, err = s.cfg.Users.UpdateUser(ctx, id, baton.UserUpdate{Role: &role})
	if err != nil {
		return nil, fmt.Errorf("set role: %w", err)
	}
	s.audit(ctx, actor, "user.role", u, map[string]any{"role": string(role)})
	return u, nil
}

// SetDisabled disables or re-enables a user. Disabling ends every session
// of the user (storage does it in the same transaction); the caller closes
// their websockets. The last enabled admin cannot be disabled.
func (s *Service) SetDisabled(ctx context.Context, actor *baton.User, id int64, disabled bool) (*baton.User, error) {
	u, err := s.cfg.Users.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if disabled && u.Role == baton.RoleAdmin && !u.Disabled {
		if err := s.keepAnAdmin(ctx); err != nil {
			return nil, err
		}
	}
	u, err = s.cfg.Users.UpdateUser(ctx, id, baton.UserUpdate{Disabled: &disabled})
	if err != nil {
		return nil, fmt.Errorf("set disabled: %w", err)
	}
	action := "user.enable"
	if disabled {
		action = "user.disable"
	}
	s.audit(ctx, actor, action, u, nil)
	return u, nil
}

// SetPassword replaces a user's password after checking the policy.
// Ending the user's sessions is the caller's choice.
func (s *Service) SetPassword(ctx context.Context, actor *baton.User, id int64, password string) (*baton.User, error) {
	hash, err := s.cfg.Hasher.Hash(password)
	if err != nil {
		return nil, err
	}
	u, err := s.cfg.Users.UpdateUser(ctx, id, baton.UserUpdate{PasswordHash: &hash})
	if err != nil {
		return nil, fmt.Errorf("set password: %w", err)
	}
	s.audit(ctx, actor, "user.password", u, nil)
	return u, nil
}

// EndSessions ends every session of a user ("sign out everywhere") and
// returns how many there were.
func (s *Service) EndSessions(ctx context.Context, actor *baton.User, id int64) (int, error) {
	n, err := s.cfg.Users.DeleteUserSessions(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	s.audit(ctx, actor, "user.sign_out_everywhere", &baton.User{ID: id}, map[string]any{"sessions": n})
	return n, nil
}

func (s *Service) keepAnAdmin(ctx context.Context) error {
	n, err := s.cfg.Users.CountActiveAdmins(ctx)
	if err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if n <= 1 {
		return baton.Errorf(baton.ECONFLICT, "Baton needs at least one enabled admin: make someone else an admin first.")
	}
	return nil
}

func (s *Service) audit(ctx context.Context, actor *baton.User, action string, subject *baton.User, detail map[string]any) {
	if s.cfg.Audit == nil {
		return
	}
	e := baton.AuditEntry{At: s.cfg.Now(), Action: action, Subject: fmt.Sprintf("user:%d", subject.ID), Detail: detail}
	if actor != nil {
		e.ActorID = &actor.ID
	}
	if err := s.cfg.Audit.Audit(ctx, e); err != nil {
		s.cfg.Logger.Error("write audit log", "action", action, "err", err)
	}
}

func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
