package web

import (
	"net/http"
	"strings"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/static"
)

// Route is one registered route: its ServeMux pattern, the least role that
// may use it ("" for public), and whether it runs with sessions (console
// pages and actions) or without (machine endpoints: webhook, health,
// static files), so tests can check every route's protection.
type Route struct {
	Pattern string
	Method  string // "" when the pattern matches every method
	Path    string
	Min     baton.Role
	// Session: the route loads the session and, for state-changing
	// methods, checks CSRF. False only for machine endpoints.
	Session bool
}

// Routes lists every registered route in registration order.
func (s *Server) Routes() []Route { return append([]Route(nil), s.registered...) }

// routes registers every route. Patterns are stdlib ServeMux patterns.
func (s *Server) routes() {
	// Machine to machine: signed by Facebook or anonymous probes; no
	// session, no CSRF (no browser sends them with a cookie that matters).
	s.handleMachine("GET /webhook", s.verifyWebhook)
	s.handleMachine("POST /webhook", s.receiveWebhook)
	s.handleMachine("GET /healthz", s.showHealth)
	s.handleMachine("GET /readyz", s.showReadiness)
	s.handleMachine("GET /static/", static.Handler().ServeHTTP)

	s.handle("GET /login", "", s.showLogin)
	s.handle("POST /login", "", s.login)
	s.handle("POST /logout", baton.RoleAgent, s.logout)
	s.handle("POST /logout/everywhere", baton.RoleAgent, s.logoutEverywhere)

	s.handle("GET /admin/users", baton.RoleAdmin, s.showUsers)
	s.handle("POST /admin/users", baton.RoleAdmin, s.addUser)
	s.handle("POST /admin/users/{id}/role", baton.RoleAdmin, s.setUserRole)
	s.handle("POST /admin/users/{id}/disable", baton.RoleAdmin, s.disableUser)
	s.handle("POST /admin/users/{id}/enable", baton.RoleAdmin, s.enableUser)
	s.handle("POST /admin/users/{id}/signout", baton.RoleAdmin, s.signOutUser)
	s.handle("GET /admin/page", baton.RoleAdmin, s.showPageSettings)
	s.handle("POST /admin/page", baton.RoleAdmin, s.savePageSettings)
	s.adminWebhookRoutes()

	s.consoleRoutes()
	s.watchRoutes()

	// Supervision (issue 8): audit log, team dashboard, API tokens, API.
	s.handle("GET /audit", baton.RoleSupervisor, s.showAudit)
	s.handle("GET /audit.csv", baton.RoleSupervisor, s.exportAudit)
	s.handle("GET /dashboard", baton.RoleSupervisor, s.showDashboard)
	s.handle("GET /account/tokens", baton.RoleAgent, s.showTokens)
	s.handle("POST /account/tokens", baton.RoleAgent, s.createToken)
	s.handle("POST /account/tokens/{id}/revoke", baton.RoleAgent, s.revokeToken)
	s.apiRoutes()
}

// handle registers a console route: h runs with the session loaded, the
// user signed in (unless min is ""), holding at least role min, and, for
// POST, PUT, PATCH and DELETE, with a valid CSRF token from an allowed
// origin; an audited route's successful requests also write their audit
// line (web/audit.go). It is the only way console routes are added, so
// every route is protected, audited and listed in Routes.
func (s *Server) handle(pattern string, min baton.Role, h http.HandlerFunc) {
	s.record(pattern, min, true)
	next := s.audited(pattern, h)
	next = s.requireCSRF(next)
	next = s.requireRole(min, next)
	next = s.loadUser(next)
	next = s.sessions.LoadAndSave(next)
	s.mux.Handle(pattern, next)
}

// handleMachine registers a route without sessions or CSRF, for callers
// that are not browsers: the webhook (its signature is its
// authentication), health checks and static files.
func (s *Server) handleMachine(pattern string, h http.HandlerFunc) {
	s.record(pattern, "", false)
	s.mux.Handle(pattern, h)
}

func (s *Server) record(pattern string, min baton.Role, session bool) {
	rt := Route{Pattern: pattern, Min: min, Session: session, Path: pattern}
	if m, p, ok := strings.Cut(pattern, " "); ok {
		rt.Method, rt.Path = m, p
	}
	s.registered = append(s.registered, rt)
}
