package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

// Session keys. The values are plain types so scs's gob codec needs no
// registration.
const (
	sessUserID     = "user_id"      // int64: the signed-in user
	sessSignedInAt = "signed_in_at" // int64 (Unix ns): when they signed in
	sessCSRF       = "csrf"         // string: the session's CSRF token
)

type ctxKey int

const userKey ctxKey = iota

// SessionOwner reads who signed a session in, and when, out of its stored
// data (scs's gob encoding), for the session store's owner column.
func SessionOwner(data []byte) (userID int64, signedInAt time.Time, ok bool) {
	_, values, err := scs.GobCodec{}.Decode(data)
	if err != nil {
		return 0, time.Time{}, false
	}
	id, _ := values[sessUserID].(int64)
	at, _ := values[sessSignedInAt].(int64)
	if id == 0 {
		return 0, time.Time{}, false
	}
	return id, time.Unix(0, at), true
}

// loadUser puts the signed-in user in the request context. A session whose
// user is gone, disabled, or signed out everywhere since it signed in is
// ended on the spot.
func (s *Server) loadUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := s.sessions.GetInt64(ctx, sessUserID)
		if id == 0 || s.cfg.Users == nil {
			next.ServeHTTP(w, r)
			return
		}
		u, err := s.cfg.Users.UserByID(ctx, id)
		if err != nil && baton.ErrorCode(err) != baton.ENOTFOUND {
			s.writeError(w, r, err)
			return
		}
		at := time.Unix(0, s.sessions.GetInt64(ctx, sessSignedInAt))
		if u == nil || u.Disabled || (u.SessionsEndedAt != nil && !at.After(*u.SessionsEndedAt)) {
			if err := s.sessions.Destroy(ctx); err != nil {
				s.writeError(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, userKey, u)))
	})
}

// currentUser is the signed-in user, nil when signed out.
func (s *Server) currentUser(r *http.Request) *baton.User {
	u, _ := r.Context().Value(userKey).(*baton.User)
	return u
}

// requireRole sends signed-out visitors to sign in (pages) or answers 401
// (fetch, forms), and refuses a signed-in user below min with a 403 page.
func (s *Server) requireRole(min baton.Role, next http.Handler) http.Handler {
	if min == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := s.currentUser(r)
		if u == nil {
			if (r.Method == http.MethodGet || r.Method == http.MethodHead) && wantsHTML(r) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.refuse(w, r, http.StatusUnauthorized, "signed-out", "Please sign in",
				"Your session has ended. Sign in again to continue.")
			return
		}
		if !u.Role.AtLeast(min) {
			s.log.WarnContext(r.Context(), "role refused", "user_id", u.ID, "role", u.Role, "needs", min, "method", r.Method, "path", r.URL.Path)
			s.refuse(w, r, http.StatusForbidden, "role-denied", "Not allowed",
				"This needs the "+string(min)+" role; you are signed in as "+articled(u.Role)+". Ask an admin if you need access.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func articled(r baton.Role) string {
	if r == baton.RoleAdmin || r == baton.RoleAgent {
		return "an " + string(r)
	}
	return "a " + string(r)
}

// wantsHTML: a browser navigation rather than a script's fetch.
func wantsHTML(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	a := r.Header.Get("Accept")
	return a == "" || strings.Contains(a, "text/html")
}

// pageData builds the layout's props for a page.
func (s *Server) pageData(r *http.Request, title, nav string) templates.Page {
	return templates.Page{Title: title, Nav: nav, User: s.currentUser(r), CSRFToken: s.csrfToken(r)}
}

// signIn starts an authenticated session for u: a fresh token (the one
// the visitor had before signing in is void, so a planted token is
// useless), a fresh CSRF token, and the sign-in time.
func (s *Server) signIn(r *http.Request, u *baton.User) error {
	ctx := r.Context()
	if err := s.sessions.RenewToken(ctx); err != nil {
		return err
	}
	s.sessions.Put(ctx, sessUserID, u.ID)
	s.sessions.Put(ctx, sessSignedInAt, s.cfg.Now().UnixNano())
	s.sessions.Put(ctx, sessCSRF, newToken())
	return nil
}

// endUserSessions ends every session of a user and their websockets.
func (s *Server) endUserSessions(ctx context.Context, actor *baton.User, userID int64) error {
	if _, err := s.cfg.Accounts.EndSessions(ctx, actor, userID); err != nil {
		return err
	}
	s.KillUser(userID)
	return nil
}
