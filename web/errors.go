package web

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/baton-chat/baton/internal/baton"
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
