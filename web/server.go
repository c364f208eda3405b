// Package web is Baton's HTTP layer: the webhook receiver, the console's
// pages and actions, health checks and the websocket bridge. Handlers talk
// to services through interfaces; none reaches PostgreSQL by itself.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/baton-chat/baton/internal/account"
	"github.com/baton-chat/baton/internal/baton"
)

// Ingest is the webhook ingest service (internal/webhook.Ingester).
type Ingest interface {
	VerifyChallenge(mode, token string) error
	Verify(body []byte, sig256, sig1 string) error
	Submit(ctx context.Context, body []byte) error
	MaxBody() int64
}

// Accounts is the account rules service (internal/account.Service): the
// web layer signs people in and manages users only through it, so every
// rule (password policy, rate limits, the last admin) holds on every path.
type Accounts interface {
	Login(ctx context.Context, email, password, ip string) (*baton.User, error)
	CreateUser(ctx context.Context, actor *baton.User, n account.NewUser) (*baton.User, error)
	SetRole(ctx context.Context, actor *baton.User, id int64, role baton.Role) (*baton.User, error)
	SetDisabled(ctx context.Context, actor *baton.User, id int64, disabled bool) (*baton.User, error)
	EndSessions(ctx context.Context, actor *baton.User, id int64) (int, error)
	Limits() account.Limits
}

// SessionKiller ends every live connection of a user (the console's
// websockets) when their sessions end: sign out everywhere, disabling.
type SessionKiller interface{ KillUser(userID int64) }

// Config wires the server's dependencies; cmd/baton builds it.
type Config struct {
	Logger *slog.Logger
	Ingest Ingest
	// Ready reports whether the database is reachable and migrated.
	Ready func(ctx context.Context) error
	// Console is what the agent console's pages and actions use.
	Console Console

	// Users looks up the signed-in user on every request.
	Users baton.UserService
	// Accounts signs in and manages users.
	Accounts Accounts
	// Sessions stores sessions (postgres.SessionStore in production; an
	// in-memory store when nil, for tests that need no database).
	Sessions scs.Store
	// Settings are the Page settings admins edit.
	Settings baton.SettingsService
	// Audit records admin actions; optional.
	Audit baton.AuditLog
	// AllowedOrigins may post forms and open websockets besides the
	// console's own origin, e.g. "https://baton.example.com".
	AllowedOrigins []string
	// SecureCookies marks the session cookie Secure and gives it the
	// __Host- prefix; off only for plain-http demos on localhost.
	SecureCookies bool
	// SessionIdle ends a session unused this long (default 60 min);
	// SessionMax ends any session this long after sign-in (default 12 h).
	SessionIdle time.Duration
	SessionMax  time.Duration
	// OnUserSessionsEnded is called after every session of a user ended
	// (sign out everywhere, disabled), so the console closes their
	// websockets. It must not block.
	OnUserSessionsEnded func(userID int64)
	// Now is the clock (sign-in times).
	Now func() time.Time
}

// Server is Baton's HTTP handler.
type Server struct {
	cfg      Config
	log      *slog.Logger
	mux      *http.ServeMux
	sessions *scs.SessionManager
	// registered is every route with its minimum role, in order, so that
	// tests can walk all of them (see handle).
	registered []Route
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = 60 * time.Minute
	}
	if cfg.SessionMax == 0 {
		cfg.SessionMax = 12 * time.Hour
	}
	s := &Server{cfg: cfg, log: slog.New(LogHandler(cfg.Logger.Handler())), mux: http.NewServeMux()}
	s.sessions = s.newSessionManager()
	s.routes()
	return s
}

func (s *Server) newSessionManager() *scs.SessionManager {
	m := scs.New()
	if s.cfg.Sessions != nil {
		m.Store = s.cfg.Sessions
	} else {
		m.Store = memstore.New()
	}
	m.IdleTimeout = s.cfg.SessionIdle
	m.Lifetime = s.cfg.SessionMax
	m.Cookie.Name = SessionCookieName(s.cfg.SecureCookies)
	m.Cookie.HttpOnly = true
	m.Cookie.SameSite = http.SameSiteLaxMode
	m.Cookie.Secure = s.cfg.SecureCookies
	m.Cookie.Path = "/"
	m.Cookie.Persist = true
	m.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		s.writeError(w, r, err)
	}
	return m
}

// SessionCookieName is the session cookie's name: with Secure, the
// __Host- prefix makes browsers refuse it unless it is Secure, host-only
// and Path=/, so a sibling subdomain cannot plant or shadow it.
func SessionCookieName(secure bool) string {
	if secure {
		return "__Host-baton_session"
	}
	return "baton_session"
}

// KillUser ends every live connection of a user; Server is the
// SessionKiller the web layer itself uses after ending sessions.
func (s *Server) KillUser(userID int64) {
	if s.cfg.OnUserSessionsEnded != nil {
		s.cfg.OnUserSessionsEnded(userID)
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requestIDs(s.recoverPanics(s.securityHeaders(s.mux))).ServeHTTP(w, r)
}
