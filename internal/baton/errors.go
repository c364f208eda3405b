// Package baton holds Baton's domain: conversations, messages, owners,
// events and users, the coded errors every layer speaks, and the service
// interfaces that storage implements. It imports only the standard library
// so that every other package can depend on it.
package baton

import (
	"errors"
	"fmt"
)

// Error codes. The web layer maps each to one HTTP status (web/errors.go).
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EFORBIDDEN    = "forbidden"
	EUNAUTHORIZED = "unauthorized"
	EUNAVAILABLE  = "unavailable"
)

// Error is a domain error: a code for programs and a message safe to show
// to a person.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("baton error: code=%s message=%s", e.Code, e.Message)
}

// Errorf builds a domain error whose message may be shown to users.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the domain error inside err, EINTERNAL for
// any other error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of err: the domain message, or
// "Internal error." for anything else, so internals never reach a page.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
