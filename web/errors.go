package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

// statusOf is the one mapping from domain error codes to HTTP statuses.
func statusOf(err error) int {
	switch baton.ErrorCode(err) {
	case "":
		return http.StatusOK
	case baton.EINVALID:
		return http.StatusBadRequest
	case baton.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case baton.EFORBIDDEN:
		return http.StatusForbidden
	case baton.ENOTFOUND:
		return http.StatusNotFound
	case baton.ECONFLICT:
		return http.StatusConflict
	case baton.ERATELIMITED:
		return http.StatusTooManyRequests
	case baton.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// logError logs err once, at the boundary, at a level fitting its status.
func logError(l *slog.Logger, r *http.Request, status int, err error) {
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	var be *baton.Error
	if status < 500 && errors.As(err, &be) && be.Code == baton.ENOTFOUND {
		level = slog.LevelInfo
	}
	l.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
}

// writeTextError answers err as plain text with the user-safe message.
func (s *Server) writeTextError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	logError(s.log, r, status, err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(baton.ErrorMessage(err) + "\n"))
}

// writeError answers err on a console route: an error page for a browser,
// JSON {"error": "…"} for a script. It logs once.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	logError(s.log, r, status, err)
	s.refuse(w, r, status, "error", titleOf(status), baton.ErrorMessage(err))
}

func titleOf(status int) string {
	switch status {
	case http.StatusNotFound:
		return "Not found"
	case http.StatusTooManyRequests:
		return "Too many attempts"
	case http.StatusForbidden:
		return "Not allowed"
	case http.StatusUnauthorized:
		return "Please sign in"
	}
	if status >= 500 {
		return "Something went wrong"
	}
	return "That did not work"
}

// refuse answers status with a message for a person: the error page
// (templates/errorpage.templ) to browsers, JSON to fetch calls. testID
// names the cause for tests.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, testID, title, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": msg, "code": testID})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	p := templates.Page{Title: title, User: s.currentUser(r)}
	if p.User != nil {
		// The layout's sign-out forms need the token; reading it never
		// creates a session for a visitor who has none.
		p.CSRFToken = s.sessions.GetString(r.Context(), sessCSRF)
	}
	if err := templates.ErrorPage(p, templates.ErrorInfo{Status: status, Title: title, Message: msg, TestID: testID}).Render(r.Context(), w); err != nil {
		s.log.WarnContext(r.Context(), "render error page", "err", err)
	}
}

// wantsJSON: the caller is a script (fetch with JSON) rather than a page.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json") ||
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
}
