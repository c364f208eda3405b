package graph

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func envelope(code, subcode int, msg string, extra string) string {
	sub := ""
	if subcode != 0 {
		sub = fmt.Sprintf(`,"error_subcode":%d`, subcode)
	}
	return fmt.Sprintf(`{"error":{"message":%q,"type":"OAuthException","code":%d%s%s,"fbtrace_id":"AQ2lKD7Uqnv"}}`,
		msg, code, sub, extra)
}

// TestClassification runs the PROTOCOL.md §9.2 rows, and the §9.1 status
// rules, through a real call and checks every classifier.
func TestClassification(t *testing.T) {
	const (
		transient = 1 << iota
		window
		notOwner
		hidden
		noProfile
		auth
	)
	tests := []struct {
		name   string
		status int
		body   string
		want   int // classes that must hold; all others must not
		plain  string
	}{
		{"window closed", 400, envelope(10, 2018278, "(#10) This message is sent outside of allowed window.", ""),
			window, "The reply window for this conversation has closed."},
		{"non-owner send", 400, envelope(10, 2018300, "(#10) Message failed to send because another app is controlling this thread now.", ""),
			notOwner, "Another app is handling this conversation right now."},
		{"user blocked the page", 400, envelope(10, 2018108, "(#10) They can't receive your messages right now.", ""),
			0, "This person can't receive messages from the Page right now."},
		{"page restricted", 400, envelope(10, 1893063, "(#10) You are temporarily restricted from sending messages.", ""),
			0, "The Page is temporarily restricted from sending messages."},
		{"app without a role", 400, envelope(10, 2018171, "(#10) Only available to Primary and Secondary Receivers.", ""),
			0, "Baton's app has no role on this Page; an admin must fix the Page settings."},
		{"no permission", 400, envelope(10, 0, "(#10) Application does not have permission for this action", ""),
			0, "Messenger does not allow Baton's app to do this."},
		{"unknown psid", 400, envelope(100, 2018001, "(#100) No matching user found", ""),
			0, "Messenger does not know this person."},
		{"malformed id", 400, envelope(100, 0, `(#100) Param recipient[id] must be a valid ID string (e.g., "123")`, ""),
			0, "Messenger rejected this as invalid."},
		{"message plus action", 400, envelope(100, 2018014, "(#100) Cannot send both message and state at the same time.", ""),
			0, "Baton sent a request Messenger does not accept."},
		{"attachment fetch failed", 400, envelope(100, 2018008, "(#100) Failed to fetch the file from the url", ""),
			0, "Messenger could not fetch the attachment."},
		{"attachment too large", 400, envelope(100, 2018109, "(#100) Attachment size exceeds allowable limit", ""),
			0, "The attachment is too large for Messenger."},
		{"pass by non-owner", 400, envelope(100, 2534037, "(#100) The action is invalid since it's not the thread owner.", ""),
			notOwner, "Baton no longer controls this conversation."},
		{"owner hidden", 400, envelope(100, 2018234, "(#100) Denying visibility of any secondary receiver to another secondary receiver other than itself.", ""),
			hidden, "Another app, such as the Page Inbox, controls this conversation."},
		{"no profile", 400, envelope(100, 2018218, "No profile available for this user.", ""),
			noProfile, "This person's profile is not available."},
		{"bad appsecret_proof", 400, envelope(100, 0, "Invalid appsecret_proof provided in the API argument", ""),
			auth, "The Page's app secret is wrong; an admin must fix the Page settings."},
		{"unknown path", 400, envelope(2500, 0, "Unknown path components: /me/extend_thread_control", ""),
			0, "Baton sent a request Messenger does not understand."},
		{"person unavailable", 400, envelope(551, 1545041, "(#551) This person isn't available right now.", ""),
			0, "This person isn't available right now."},
		{"permissions 200 as 403", 403, envelope(200, 0, "(#200) Permissions error", ""),
			0, "The Page's permissions do not allow this message."},
		{"permissions 230", 403, envelope(230, 0, "(#230) Permissions disallow message to user", ""),
			0, "The Page's permissions do not allow this message."},
		{"bad token as 400", 400, envelope(190, 0, "Invalid OAuth access token - Cannot parse access token", ""),
			auth, "The Page's access token is no longer valid; an admin must reconnect the Page."},
		{"expired token as 401", 401, envelope(190, 463, "Error validating access token: Session has expired", ""),
			auth, "The Page's access token is no longer valid; an admin must reconnect the Page."},
		{"rate limit", 400, envelope(613, 0, "(#613) Calls to this api have exceeded the rate limit.", ""),
			transient, "Messenger is limiting how fast the Page may send; Baton will try again."},
		{"tag abuse", 400, envelope(613, 2018338, "(#613) tag abuse", ""),
			0, "Messenger blocked this for misuse of message tags."},
		{"app throttled", 400, envelope(4, 0, "(#4) Application request limit reached", ""),
			transient, "Messenger is limiting how fast the Page may send; Baton will try again."},
		{"user throttled", 400, envelope(17, 0, "(#17) User request limit reached", ""),
			transient, "Messenger is limiting how fast the Page may send; Baton will try again."},
		{"page throttled", 400, envelope(32, 0, "(#32) Page request limit reached", ""),
			transient, "Messenger is limiting how fast the Page may send; Baton will try again."},
		{"custom throttled", 400, envelope(341, 0, "(#341) Application limit reached", ""),
			transient, "Messenger is limiting how fast the Page may send; Baton will try again."},
		{"temporary", 503, envelope(2, 0, "An unexpected error has occurred. Please retry your request later.", `,"is_transient":true`),
			transient, "Messenger is having trouble right now; Baton will try again."},
		{"unknown as 500", 500, envelope(1, 0, "An unknown error occurred.", ""),
			transient, "Messenger is having trouble right now; Baton will try again."},
		{"unknown under 400", 400, envelope(1, 0, "An unknown error occurred.", ""),
			transient, "Messenger is having trouble right now; Baton will try again."},
		{"is_transient on another code", 400, envelope(100, 0, "(#100) Invalid parameter", `,"is_transient":true`),
			transient, "Messenger rejected this as invalid."},
		{"envelope under 200", 200, envelope(10, 2018300, "(#10) Message failed to send because another app is controlling this thread now.", ""),
			notOwner, "Another app is handling this conversation right now."},
		{"codes as strings", 400, `{"error":{"message":"(#10) x","code":"10","error_subcode":"2018278"}}`,
			window, "The reply window for this conversation has closed."},
		{"unlisted code with user message", 400, `{"error":{"message":"(#368) blocked","code":368,"error_user_msg":"You can't do this right now."}}`,
			0, "You can't do this right now."},
		{"unlisted code", 400, envelope(368, 0, "(#368) The action attempted has been deemed abusive", ""),
			0, "Messenger refused this (error 368)."},
		{"html 502", 502, `<html><body>Bad Gateway</body></html>`,
			transient, "Messenger is having trouble right now; Baton will try again."},
		{"plain 503", 503, `Service Unavailable`,
			transient, "Messenger is having trouble right now; Baton will try again."},
		{"empty 504", 504, ``,
			transient, "Messenger is having trouble right now; Baton will try again."},
		{"proxy 429", 429, `slow down`,
			transient, "Messenger is having trouble right now; Baton will try again."},
		{"plain 404", 404, `404 page not found`,
			0, "Messenger refused this (HTTP 404)."},
		{"string error 400", 400, `{"error":"invalid_request"}`,
			0, "Messenger refused this (HTTP 400)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGraph(t, tt.status, tt.body)
			_, err := f.client().Send(context.Background(), SendRequest{PSID: "700800900",
				MessagingType: TypeResponse, Message: Message{Text: "hi"}})
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if ge.HTTPStatus != tt.status {
				t.Errorf("HTTPStatus = %d, want %d", ge.HTTPStatus, tt.status)
			}
			checks := []struct {
				name string
				bit  int
				got  bool
			}{
				{"IsTransient", transient, IsTransient(err)},
				{"IsWindowClosed", window, IsWindowClosed(err)},
				{"IsNotOwner", notOwner, IsNotOwner(err)},
				{"IsOwnerHidden", hidden, IsOwnerHidden(err)},
				{"IsNoProfile", noProfile, IsNoProfile(err)},
				{"IsAuthError", auth, IsAuthError(err)},
			}
			for _, c := range checks {
				if want := tt.want&c.bit != 0; c.got != want {
					t.Errorf("%s = %v, want %v (%v)", c.name, c.got, want, err)
				}
			}
			if ge.Transient != (tt.want&transient != 0) {
				t.Errorf("Error.Transient = %v", ge.Transient)
			}
			if IsTimeout(err) {
				t.Errorf("IsTimeout = true for an answered call")
			}
			if got := PlainReason(err); got != tt.plain {
				t.Errorf("PlainReason = %q, want %q", got, tt.plain)
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	f := newFakeGraph(t, 400, `{"error":{"message":"(#10) Message failed to send because another app is controlling this thread now.",
		"type":"OAuthException","code":10,"error_subcode":2018300,"error_user_title":"Not sent","error_user_msg":"Try later",
		"fbtrace_id":"AQ2lKD7UqnvqCrMs16fUNLk"}}`)
	err := f.client().SenderAction(context.Background(), "700800900", ActionTypingOn)
	var ge *Error
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v", err)
	}
	want := Error{HTTPStatus: 400, Code: 10, Subcode: 2018300, Type: "OAuthException",
		Message:   "(#10) Message failed to send because another app is controlling this thread now.",
		UserTitle: "Not sent", UserMsg: "Try later", FBTraceID: "AQ2lKD7UqnvqCrMs16fUNLk"}
	if *ge != want {
		t.Fatalf("error = %+v\nwant    %+v", *ge, want)
	}
	const text = "graph: sender action: (#10) Message failed to send because another app is controlling this thread now. (code 10/2018300, HTTP 400, fbtrace_id AQ2lKD7UqnvqCrMs16fUNLk)"
	if err.Error() != text {
		t.Fatalf("Error() = %q\nwant       %q", err.Error(), text)
	}
}

// TestHandBuiltErrors checks that classifiers work on *Error values built
// by other packages' fakes, with Transient left unset.
func TestHandBuiltErrors(t *testing.T) {
	tests := []struct {
		err       error
		transient bool
	}{
		{&Error{Code: 2}, true},
		{&Error{HTTPStatus: 500}, true},
		{&Error{Code: 613}, true},
		{&Error{Code: 613, Subcode: 2018338}, false},
		{&Error{Code: 100, Transient: true}, true},
		{fmt.Errorf("outbox: %w", &Error{Code: 10, Subcode: 2018278}), false},
		{errors.New("plain"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := IsTransient(tt.err); got != tt.transient {
			t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.transient)
		}
	}
	if !IsWindowClosed(fmt.Errorf("outbox: %w", &Error{Code: 10, Subcode: 2018278})) {
		t.Error("IsWindowClosed misses a wrapped error")
	}
	if PlainReason(nil) != "" {
		t.Error("PlainReason(nil) is not empty")
	}
	if got := PlainReason(errors.New("x")); got != "Something went wrong while talking to Messenger." {
		t.Errorf("PlainReason(other) = %q", got)
	}
}

func TestGraphMessageQuotingTokenIsScrubbed(t *testing.T) {
	f := newFakeGraph(t, 400, envelope(190, 0, "Malformed access token "+testToken, ""))
	err := f.client().SenderAction(context.Background(), "1", ActionTypingOff)
	if err == nil || strings.Contains(err.Error(), testToken) {
		t.Fatalf("err = %v: token not scrubbed", err)
	}
	if !strings.Contains(err.Error(), "Malformed access token [redacted]") {
		t.Fatalf("err = %v", err)
	}
}
