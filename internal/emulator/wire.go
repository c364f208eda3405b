package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// The wire structs below are the emulator's own view of the Messenger webhook
// format (PROTOCOL.md §4–§5). They are deliberately separate from Baton's
// parser so that a misreading of the protocol cannot hide in both sides.

// wireID is the {"id":…} object used for sender and recipient.
type wireID struct {
	ID string `json:"id"`
}

// wireEvent is one element of a messaging or standby array. Field order
// follows Meta's examples, which matters only for human readers.
type wireEvent struct {
	Sender    *wireID             `json:"sender,omitempty"`
	Recipient *wireID             `json:"recipient,omitempty"`
	Timestamp int64               `json:"timestamp,omitempty"`
	Message   *wireMessage        `json:"message,omitempty"`
	Postback  *wirePostback       `json:"postback,omitempty"`
	Read      *wireWatermark      `json:"read,omitempty"`
	Delivery  *wireDelivery       `json:"delivery,omitempty"`
	Reaction  *wireReaction       `json:"reaction,omitempty"`
	Referral  *wireReferral       `json:"referral,omitempty"`
	Pass      *wireHandover       `json:"pass_thread_control,omitempty"`
	Take      *wireHandover       `json:"take_thread_control,omitempty"`
	Request   *wireHandover       `json:"request_thread_control,omitempty"`
	AppRoles  map[string][]string `json:"app_roles,omitempty"`
}

// wireMessage is a user message or an echo of a page message.
type wireMessage struct {
	IsEcho       bool              `json:"is_echo,omitempty"`
	AppID        json.RawMessage   `json:"app_id,omitempty"`
	Metadata     *string           `json:"metadata,omitempty"`
	Mid          string            `json:"mid"`
	Text         string            `json:"text,omitempty"`
	QuickReply   *wirePayload      `json:"quick_reply,omitempty"`
	Attachments  []wireAttachment  `json:"attachments,omitempty"`
	QuickReplies []json.RawMessage `json:"quick_replies,omitempty"`
}

// wirePayload carries a quick reply's payload.
type wirePayload struct {
	Payload string `json:"payload"`
}

// wireAttachment is an attachment as it appears in webhooks.
type wireAttachment struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wirePostback is a button tap; Payload is nil on standby copies (§5.3).
type wirePostback struct {
	Mid     string  `json:"mid,omitempty"`
	Title   string  `json:"title"`
	Payload *string `json:"payload,omitempty"`
}

// wireWatermark is a read receipt.
type wireWatermark struct {
	Watermark int64 `json:"watermark"`
}

// wireDelivery is a delivery receipt; it has no timestamp in the wrapper (§5.4).
type wireDelivery struct {
	Mids      []string `json:"mids,omitempty"`
	Watermark int64    `json:"watermark"`
}

// wireReaction is a person's reaction to a page message (§5.4).
type wireReaction struct {
	Reaction string `json:"reaction,omitempty"`
	Emoji    string `json:"emoji,omitempty"`
	Action   string `json:"action"`
	Mid      string `json:"mid"`
}

// wireReferral is a person re-entering the thread from a link or ad (§5.4).
type wireReferral struct {
	Ref    string `json:"ref,omitempty"`
	Source string `json:"source"`
	Type   string `json:"type"`
}

// wireHandover is the body of pass, take and request events (§5.5–§5.7).
// Ids are pre-rendered so that the app_id_json switch and explicit nulls
// survive serialisation.
type wireHandover struct {
	PreviousOwner  json.RawMessage `json:"previous_owner_app_id,omitempty"`
	NewOwner       json.RawMessage `json:"new_owner_app_id,omitempty"`
	RequestedOwner json.RawMessage `json:"requested_owner_app_id,omitempty"`
	Metadata       *string         `json:"metadata,omitempty"`
}

// wireEntry is one entry of the webhook envelope; it holds one event.
type wireEntry struct {
	ID        string            `json:"id"`
	Time      int64             `json:"time"`
	Messaging []json.RawMessage `json:"messaging,omitempty"`
	Standby   []json.RawMessage `json:"standby,omitempty"`
}

// wireEnvelope is the body of a webhook POST.
type wireEnvelope struct {
	Object string      `json:"object"`
	Entry  []wireEntry `json:"entry"`
}

// marshalPlain encodes v as compact JSON with raw UTF-8 and without HTML
// escaping: the input of metaEscape, and the output of json_escaping=plain.
func marshalPlain(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// metaEscape rewrites valid compact JSON the way Meta signs it (§4.3): every
// non-ASCII character becomes a lowercase \uXXXX escape (a surrogate pair
// above U+FFFF) and every '/' becomes "\/". Both can only occur inside
// strings, so a byte-level pass is exact.
func metaEscape(src []byte) []byte {
	out := make([]byte, 0, len(src)+len(src)/8)
	const hex = "0123456789abcdef"
	esc := func(u uint16) {
		out = append(out, '\\', 'u', hex[u>>12&0xf], hex[u>>8&0xf], hex[u>>4&0xf], hex[u&0xf])
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '/':
			out = append(out, '\\', '/')
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(src[i:])
			i += size
			if r > 0xffff {
				hi, lo := utf16.EncodeRune(r)
				esc(uint16(hi))
				esc(uint16(lo))
			} else {
				esc(uint16(r))
			}
		}
	}
	return out
}

// serialise is the one JSON writer for webhook bodies and Graph responses.
func serialise(v any, escaping string) ([]byte, error) {
	b, err := marshalPlain(v)
	if err != nil {
		return nil, err
	}
	if escaping == "plain" {
		return b, nil
	}
	return metaEscape(b), nil
}
