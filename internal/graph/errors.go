package graph

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/baton-chat/baton/internal/messenger"
)

// Error is a failure answered by the Graph API (PROTOCOL.md §9.1), or, when
// the body was not Graph's JSON envelope, by whatever answered in its place
// (then only HTTPStatus and a short Message are set). It keeps every field
// of the envelope so the outbox can show Graph's own words and support can
// quote the fbtrace_id to Meta.
type Error struct {
	HTTPStatus int    // status line of the response; the envelope may come under any status
	Code       int    // error.code, e.g. 10
	Subcode    int    // error.error_subcode, 0 when absent
	Type       string // error.type, e.g. "OAuthException"
	Message    string // error.message, with any token redacted
	UserTitle  string // error.error_user_title, meant for end users
	UserMsg    string // error.error_user_msg, meant for end users
	FBTraceID  string // error.fbtrace_id, for reports to Meta
	// Transient is Baton's verdict (§9 "Baton's outcomes"): Graph's own
	// is_transient, or a status or code that Baton retries. The client fills
	// it in; IsTransient also recomputes it so hand-built values classify alike.
	Transient bool
}

// Error reads like Graph's message followed by the numbers support needs.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "graph error"
	}
	var parts []string
	switch {
	case e.Code != 0 && e.Subcode != 0:
		parts = append(parts, fmt.Sprintf("code %d/%d", e.Code, e.Subcode))
	case e.Code != 0:
		parts = append(parts, fmt.Sprintf("code %d", e.Code))
	}
	if e.HTTPStatus != 0 {
		parts = append(parts, "HTTP "+strconv.Itoa(e.HTTPStatus))
	}
	if e.FBTraceID != "" {
		parts = append(parts, "fbtrace_id "+e.FBTraceID)
	}
	if len(parts) == 0 {
		return msg
	}
	return msg + " (" + strings.Join(parts, ", ") + ")"
}

// ErrUnexpectedResponse marks a success status whose body Baton cannot read
// (not JSON, or missing what the call returns). The call may well have taken
// effect, so IsTimeout reports it as indeterminate rather than failed.
var ErrUnexpectedResponse = errors.New("unexpected graph response")

// ErrInvalid marks a request the client refused before any I/O because Graph
// would reject it anyway (PROTOCOL.md §8 limits); retrying cannot help.
var ErrInvalid = errors.New("invalid graph request")

// ErrNotConfigured marks a Client without a Page token, app secret or usable
// BaseURL: every call would fail, and only an admin can fix it.
var ErrNotConfigured = errors.New("graph client not configured")

// localError is a refusal made by the client itself; plain is the sentence
// PlainReason shows, kind is ErrInvalid or ErrNotConfigured.
type localError struct {
	kind   error
	detail string
	plain  string
}

func (e *localError) Error() string { return e.kind.Error() + ": " + e.detail }
func (e *localError) Unwrap() error { return e.kind }

func invalid(detail, plain string) error {
	return &localError{kind: ErrInvalid, detail: detail, plain: plain}
}

// transportError is a request that got no HTTP response at all (refused
// connection, DNS, TLS, reset, timeout). Its text is redacted at creation.
type transportError struct {
	msg string
	err error
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.err }

// isTransientStatus applies §9 "Baton's outcomes" to a status and code pair.
// 429 is not in Graph's vocabulary, but a proxy in front of it means "slow
// down" by it, which is what the retried rate-limit codes mean too.
func isTransientStatus(status, code, subcode int) bool {
	if status >= 500 && status <= 599 || status == http.StatusTooManyRequests {
		return true
	}
	switch code {
	case 1, 2, 4, 17, 32, 341:
		return true
	case 613:
		return subcode != 2018338 // tag abuse: retrying only makes it worse
	}
	return false
}

// IsTransient reports whether err is worth retrying with backoff: HTTP 5xx,
// codes 1, 2, 4, 17, 32 and 341, 613 except its tag-abuse subcode,
// is_transient, and network errors. Timeouts are excluded (see IsTimeout)
// because a blind retry could send a message twice.
func IsTransient(err error) bool {
	if err == nil || IsTimeout(err) {
		return false
	}
	var ge *Error
	if errors.As(err, &ge) {
		return ge.Transient || isTransientStatus(ge.HTTPStatus, ge.Code, ge.Subcode)
	}
	var te *transportError
	return errors.As(err, &te)
}

// IsTimeout reports whether the outcome is unknown because the request may
// have gone out: a deadline or client timeout, a cancelled context, or a
// success status with an unreadable body. The outbox then waits for the
// echo carrying its metadata before retrying (PROTOCOL.md §9, §13.4).
func IsTimeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnexpectedResponse) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var te *transportError
	if !errors.As(err, &te) {
		return false
	}
	var ne net.Error
	return errors.As(te.err, &ne) && ne.Timeout()
}

// graphCode returns the code pair of a Graph error in err's chain.
func graphCode(err error) (code, subcode int, ok bool) {
	var ge *Error
	if !errors.As(err, &ge) {
		return 0, 0, false
	}
	return ge.Code, ge.Subcode, true
}

func hasCode(err error, code, subcode int) bool {
	c, s, ok := graphCode(err)
	return ok && c == code && s == subcode
}

// IsWindowClosed reports 10/2018278: the 24-hour (or HUMAN_AGENT 7-day)
// window is over, so Baton must stop offering replies (PROTOCOL.md §11).
func IsWindowClosed(err error) bool {
	return hasCode(err, 10, messenger.CodeWindowClosedSub)
}

// IsNotOwner reports 10/2018300 (send) or 100/2534037 (pass, release): the
// thread belongs to another app, so Baton must re-check the owner.
func IsNotOwner(err error) bool {
	return hasCode(err, 10, messenger.CodeNotOwnerSendSub) ||
		hasCode(err, 100, messenger.CodeNotOwnerPassSub)
}

// IsOwnerHidden reports 100/2018234: another Secondary, often the Page
// Inbox, owns the thread and Graph will not say which (PROTOCOL.md §8.7).
func IsOwnerHidden(err error) bool {
	return hasCode(err, 100, messenger.CodeOwnerHiddenSub)
}

// IsNoProfile reports 100/2018218: the person has no readable profile. The
// client also returns it for the older `{}` answer (PROTOCOL.md §8.9), so a
// caller handles both the same way.
func IsNoProfile(err error) bool {
	return hasCode(err, 100, messenger.CodeNoProfileSub)
}

// IsAuthError reports a rejected Page token (190) or app secret proof: the
// §9.2 "pause Page; alert" outcome, which no retry can fix.
func IsAuthError(err error) bool {
	var ge *Error
	if !errors.As(err, &ge) {
		return false
	}
	return ge.Code == 190 || ge.Code == 100 && ge.Subcode == 0 &&
		strings.Contains(strings.ToLower(ge.Message), "appsecret_proof")
}

// PlainReason turns err into one short sentence an agent understands, for
// the composer and the failed outbox entry; it is "" for a nil error.
// Graph's own message stays available on *Error for the details view.
func PlainReason(err error) string {
	if err == nil {
		return ""
	}
	var le *localError
	if errors.As(err, &le) {
		return le.plain
	}
	if IsTimeout(err) {
		return "Messenger did not confirm in time; it may still go through."
	}
	var ge *Error
	if !errors.As(err, &ge) {
		var te *transportError
		if errors.As(err, &te) {
			return "Baton could not reach Messenger; it will try again."
		}
		return "Something went wrong while talking to Messenger."
	}
	if r := plainByCode(ge); r != "" {
		return r
	}
	if IsTransient(err) {
		return "Messenger is having trouble right now; Baton will try again."
	}
	if ge.UserMsg != "" {
		return ge.UserMsg
	}
	if ge.Code != 0 {
		return fmt.Sprintf("Messenger refused this (error %d).", ge.Code)
	}
	return fmt.Sprintf("Messenger refused this (HTTP %d).", ge.HTTPStatus)
}

// plainByCode covers the §9.2 rows that have a specific meaning for agents.
func plainByCode(ge *Error) string {
	switch ge.Code {
	case 10:
		switch ge.Subcode {
		case messenger.CodeWindowClosedSub:
			return "The reply window for this conversation has closed."
		case messenger.CodeNotOwnerSendSub:
			return "Another app is handling this conversation right now."
		case 2018108:
			return "This person can't receive messages from the Page right now."
		case 1893063:
			return "The Page is temporarily restricted from sending messages."
		case 2018171:
			return "Baton's app has no role on this Page; an admin must fix the Page settings."
		}
		return "Messenger does not allow Baton's app to do this."
	case 100:
		switch ge.Subcode {
		case messenger.CodeNotOwnerPassSub:
			return "Baton no longer controls this conversation."
		case messenger.CodeOwnerHiddenSub:
			return "Another app, such as the Page Inbox, controls this conversation."
		case messenger.CodeNoUserSub:
			return "Messenger does not know this person."
		case messenger.CodeMessageAndAction:
			return "Baton sent a request Messenger does not accept."
		case 2018008:
			return "Messenger could not fetch the attachment."
		case 2018109:
			return "The attachment is too large for Messenger."
		case messenger.CodeNoProfileSub:
			return "This person's profile is not available."
		case 2018247:
			return "Baton may not read this person's profile."
		}
		if IsAuthError(ge) {
			return "The Page's app secret is wrong; an admin must fix the Page settings."
		}
		return "Messenger rejected this as invalid."
	case 190:
		return "The Page's access token is no longer valid; an admin must reconnect the Page."
	case 200, 230:
		return "The Page's permissions do not allow this message."
	case 551:
		return "This person isn't available right now."
	case 613:
		if ge.Subcode == 2018338 {
			return "Messenger blocked this for misuse of message tags."
		}
		return "Messenger is limiting how fast the Page may send; Baton will try again."
	case 4, 17, 32, 341:
		return "Messenger is limiting how fast the Page may send; Baton will try again."
	case 2500:
		return "Baton sent a request Messenger does not understand."
	}
	return ""
}
