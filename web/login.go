package web

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

// showLogin renders the sign-in form; a signed-in visitor goes on to next.
func (s *Server) showLogin(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if s.currentUser(r) != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, templates.LoginForm{Next: next})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, f templates.LoginForm) {
	p := s.pageData(r, "Sign in", "")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := templates.Login(p, f).Render(r.Context(), w); err != nil {
		s.log.WarnContext(r.Context(), "render login", "err", err)
	}
}

// login checks the form. Failures get one generic message (no hint of
// which emails exist) and the form again; too many get 429 with a clear
// message. Success renews the session token and goes to a local next.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	email := strings.TrimSpace(r.PostFormValue("email"))
	next := safeNext(r.PostFormValue("next"))
	u, err := s.cfg.Accounts.Login(r.Context(), email, r.PostFormValue("password"), clientIP(r))
	if err != nil {
		status := statusOf(err)
		if status >= 500 {
			logError(s.log, r, status, err)
		}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.Accounts.Limits().Window.Seconds())))
		}
		s.renderLogin(w, r, status, templates.LoginForm{Email: email, Next: next, Error: baton.ErrorMessage(err)})
		return
	}
	if err := s.signIn(r, u); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "signed in", "user_id", u.ID, "role", u.Role)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends this session only.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.sessions.Destroy(r.Context()); err != nil {
		s.writeError(w, r, err)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// logoutEverywhere ends every session of the signed-in user, on every
// device, and closes their websockets.
func (s *Server) logoutEverywhere(w http.ResponseWriter, r *http.Request) {
	u := s.currentUser(r)
	if err := s.endUserSessions(r.Context(), u, u.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.sessions.Destroy(r.Context()); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "signed out everywhere", "user_id", u.ID)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in redirect on this site: a path starting
// with one "/", never "//host" or "/\host" (which browsers treat as
// another host), and nothing with a scheme.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}

// clientIP is the address the rate limiter counts. Baton trusts no
// forwarding header: behind a proxy, give the proxy's own limits or run
// Baton where it sees client addresses.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
