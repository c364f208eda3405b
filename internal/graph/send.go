package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Limits Graph enforces on a message (PROTOCOL.md §8.1). The client checks
// them first so the agent learns at once, without a round trip, that a
// retry cannot help.
const (
	maxTextChars     = 2000 // message.text, in characters
	maxMetadataChars = 1000 // message.metadata and handover metadata
)

// Messaging types and the tag Baton uses (PROTOCOL.md §8.1, §11).
const (
	TypeResponse   = "RESPONSE"
	TypeUpdate     = "UPDATE"
	TypeMessageTag = "MESSAGE_TAG"
	TagHumanAgent  = "HUMAN_AGENT"
)

// Sender actions Baton sends (PROTOCOL.md §8.2).
const (
	ActionTypingOn  = "typing_on"
	ActionTypingOff = "typing_off"
	ActionMarkSeen  = "mark_seen"
)

// Message is what an agent sends: text or one attachment by URL, never both,
// as the Send API takes one or the other.
type Message struct {
	Text       string
	Attachment *Attachment
	// Metadata is returned in the echo; Baton sets "baton:<outbox id>" so a
	// lost response can be matched to its echo (PROTOCOL.md §13.4).
	Metadata     string
	QuickReplies []QuickReply
}

// Attachment is a file Graph fetches from URL; Type is image, audio, video
// or file. Baton never asks Graph to keep it (is_reusable false).
type Attachment struct{ Type, URL string }

// QuickReply is a text quick-reply button; Payload comes back in the
// person's message when tapped.
type QuickReply struct{ Title, Payload string }

// SendRequest is one Send API call. MessagingType is RESPONSE or UPDATE
// within 24 h, or MESSAGE_TAG with Tag (HUMAN_AGENT) up to 7 days; the
// outbox chooses it from the window (PROTOCOL.md §11).
type SendRequest struct {
	PSID          string
	MessagingType string
	Tag           string
	Message       Message
}

// SendResult is Graph's receipt. MessageID equals the echo's mid, which is
// how a message is stored once; RecipientID is the PSID as Graph wrote it.
type SendResult struct{ RecipientID, MessageID string }

type recipientJSON struct {
	ID string `json:"id"`
}

type sendBody struct {
	Recipient     recipientJSON `json:"recipient"`
	MessagingType string        `json:"messaging_type"`
	Tag           string        `json:"tag,omitempty"`
	Message       messageJSON   `json:"message"`
}

type messageJSON struct {
	Text         string           `json:"text,omitempty"`
	Attachment   *attachmentJSON  `json:"attachment,omitempty"`
	QuickReplies []quickReplyJSON `json:"quick_replies,omitempty"`
	Metadata     string           `json:"metadata,omitempty"`
}

type attachmentJSON struct {
	Type    string `json:"type"`
	Payload struct {
		URL        string `json:"url"`
		IsReusable bool   `json:"is_reusable"`
	} `json:"payload"`
}

type quickReplyJSON struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
	Payload     string `json:"payload"`
}

// Send calls POST /me/messages (PROTOCOL.md §8.1). A success without a
// message_id is reported as ErrUnexpectedResponse (IsTimeout), because the
// message may be out and only its echo can tell.
func (c *Client) Send(ctx context.Context, r SendRequest) (SendResult, error) {
	body, err := sendBodyFor(r)
	if err != nil {
		return SendResult{}, fmt.Errorf("graph: send: %w", err)
	}
	var out struct {
		RecipientID json.RawMessage `json:"recipient_id"`
		MessageID   json.RawMessage `json:"message_id"`
	}
	if err := c.call(ctx, "POST", "/me/messages", nil, body, &out); err != nil {
		return SendResult{}, fmt.Errorf("graph: send: %w", err)
	}
	var res SendResult
	if res.RecipientID, err = idText(out.RecipientID); err != nil {
		return SendResult{}, fmt.Errorf("graph: send: %w: recipient_id: %w", ErrUnexpectedResponse, err)
	}
	if res.MessageID, err = idText(out.MessageID); err != nil || res.MessageID == "" {
		return SendResult{}, fmt.Errorf("graph: send: %w: no message_id", ErrUnexpectedResponse)
	}
	return res, nil
}

// sendBodyFor validates r and builds the §8.1 JSON body.
func sendBodyFor(r SendRequest) (sendBody, error) {
	if r.PSID == "" {
		return sendBody{}, invalid("empty psid", "This conversation has no Messenger recipient.")
	}
	switch r.MessagingType {
	case TypeResponse, TypeUpdate:
	case TypeMessageTag:
		if r.Tag == "" {
			return sendBody{}, invalid("MESSAGE_TAG without tag", "Baton tried to send a tagged message without a tag.")
		}
	default:
		return sendBody{}, invalid(fmt.Sprintf("messaging_type %q", r.MessagingType),
			"Baton tried to send with an unknown messaging type.")
	}
	m := r.Message
	switch {
	case m.Text == "" && m.Attachment == nil:
		return sendBody{}, invalid("empty message", "The message is empty.")
	case m.Text != "" && m.Attachment != nil:
		return sendBody{}, invalid("text and attachment together",
			"Messenger takes text or an attachment in one message, not both.")
	case utf8.RuneCountInString(m.Text) > maxTextChars:
		return sendBody{}, invalid("text longer than 2000 characters",
			"The message is longer than Messenger's 2000-character limit.")
	case utf8.RuneCountInString(m.Metadata) >= maxMetadataChars:
		return sendBody{}, invalid("metadata of 1000 characters or more",
			"Baton's message metadata is too long for Messenger.")
	}
	msg := messageJSON{Text: m.Text, Metadata: m.Metadata}
	if a := m.Attachment; a != nil {
		switch a.Type {
		case "image", "audio", "video", "file":
		default:
			return sendBody{}, invalid(fmt.Sprintf("attachment type %q", a.Type),
				"Messenger takes images, audio, video and files only.")
		}
		if a.URL == "" {
			return sendBody{}, invalid("attachment without url", "The attachment has no address.")
		}
		msg.Attachment = &attachmentJSON{Type: a.Type}
		msg.Attachment.Payload.URL = a.URL
	}
	for _, q := range m.QuickReplies {
		msg.QuickReplies = append(msg.QuickReplies,
			quickReplyJSON{ContentType: "text", Title: q.Title, Payload: q.Payload})
	}
	return sendBody{
		Recipient:     recipientJSON{ID: r.PSID},
		MessagingType: r.MessagingType,
		Tag:           r.Tag,
		Message:       msg,
	}, nil
}

// SenderAction calls POST /me/messages with a sender_action (typing_on,
// typing_off or mark_seen; PROTOCOL.md §8.2). Callers skip it outside the
// 24-hour window, where Graph answers 10/2018278.
func (c *Client) SenderAction(ctx context.Context, psid, action string) error {
	switch {
	case psid == "":
		return fmt.Errorf("graph: sender action: %w",
			invalid("empty psid", "This conversation has no Messenger recipient."))
	case action != ActionTypingOn && action != ActionTypingOff && action != ActionMarkSeen:
		return fmt.Errorf("graph: sender action: %w",
			invalid(fmt.Sprintf("sender_action %q", action), "Baton tried an unknown sender action."))
	}
	body := struct {
		Recipient    recipientJSON `json:"recipient"`
		SenderAction string        `json:"sender_action"`
	}{recipientJSON{ID: psid}, action}
	if err := c.call(ctx, "POST", "/me/messages", nil, body, nil); err != nil {
		return fmt.Errorf("graph: sender action: %w", err)
	}
	return nil
}
