// Package messenger is the Messenger Platform wire format as Baton reads it:
// the webhook envelope and event kinds, the signature check, and the Graph
// error envelope. It is pure (no I/O) so that it can be table-tested and fuzzed.
//
// The constants in this file are the only part the emulator shares with Baton:
// sharing parsing logic would let one misreading of PROTOCOL.md hide in both.
package messenger

// PageInboxAppID is Meta's built-in Page Inbox pseudo-app (PROTOCOL.md §12).
const PageInboxAppID = "263902037430900"

// Roles an app can hold on a Page (PROTOCOL.md §5.8).
const (
	RolePrimary   = "primary_receiver"
	RoleSecondary = "secondary_receiver"
)

// Webhook signature headers (PROTOCOL.md §4.3).
const (
	HeaderSignature256  = "X-Hub-Signature-256"
	HeaderSignatureSHA1 = "X-Hub-Signature"
)

// Graph error codes and subcodes Baton acts upon (PROTOCOL.md §9.2).
const (
	CodeWindowClosedSub  = 2018278 // code 10: outside the 24 h / 7 d window
	CodeNotOwnerSendSub  = 2018300 // code 10: another app controls the thread
	CodeNotOwnerPassSub  = 2534037 // code 100: pass/release by a non-owner
	CodeOwnerHiddenSub   = 2018234 // code 100: thread owned by another secondary
	CodeNoUserSub        = 2018001 // code 100: unknown PSID
	CodeMessageAndAction = 2018014 // code 100: message and sender_action together
	CodeNoProfileSub     = 2018218 // code 100: no profile for this user
)

// SubscribedFields are the webhook fields a connected Page subscribes Baton to (PROTOCOL.md §8.10).
var SubscribedFields = []string{
	"messages", "message_echoes", "message_reads", "message_deliveries",
	"messaging_postbacks", "message_reactions", "messaging_referrals",
	"messaging_optins", "messaging_handovers", "standby",
}
