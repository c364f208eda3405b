package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxExtend is the longest extend_thread_control accepts (PROTOCOL.md §8.6).
const maxExtend = 7 * 24 * time.Hour

type handoverBody struct {
	Recipient   recipientJSON `json:"recipient"`
	TargetAppID json.Number   `json:"target_app_id,omitempty"`
	Metadata    string        `json:"metadata,omitempty"`
	Duration    int64         `json:"duration,omitempty"`
}

// PassThreadControl calls POST /me/pass_thread_control (PROTOCOL.md §8.3).
// targetAppID "" omits target_app_id, which makes the platform pick the
// Primary; otherwise it is sent as a JSON number, the documented type, from
// its exact digits. metadata is Baton's Done document (§13.1), already JSON
// text, sent as a string field; "" omits it.
func (c *Client) PassThreadControl(ctx context.Context, psid, targetAppID, metadata string) error {
	body := handoverBody{Recipient: recipientJSON{ID: psid}, Metadata: metadata}
	if targetAppID != "" {
		if !isDigits(targetAppID) {
			return fmt.Errorf("graph: pass thread control: %w", invalid(
				fmt.Sprintf("target app id %q", targetAppID), "The bot's app id is not valid."))
		}
		body.TargetAppID = json.Number(targetAppID)
	}
	if err := c.handover(ctx, "/me/pass_thread_control", body); err != nil {
		return fmt.Errorf("graph: pass thread control: %w", err)
	}
	return nil
}

// RequestThreadControl calls POST /me/request_thread_control (PROTOCOL.md
// §8.5). Success only means the Primary was asked; control arrives, if at
// all, as a later pass event.
func (c *Client) RequestThreadControl(ctx context.Context, psid, metadata string) error {
	body := handoverBody{Recipient: recipientJSON{ID: psid}, Metadata: metadata}
	if err := c.handover(ctx, "/me/request_thread_control", body); err != nil {
		return fmt.Errorf("graph: request thread control: %w", err)
	}
	return nil
}

// ExtendThreadControl calls POST /me/extend_thread_control (PROTOCOL.md
// §8.6) so a thread an agent is working does not expire at 24 h. d is sent
// in whole seconds (rounded down) and must be between 1 s and 7 days.
func (c *Client) ExtendThreadControl(ctx context.Context, psid string, d time.Duration) error {
	if d < time.Second || d > maxExtend {
		return fmt.Errorf("graph: extend thread control: %w", invalid(
			fmt.Sprintf("duration %s outside 1s..168h", d), "Messenger extends control by 1 second to 7 days only."))
	}
	body := handoverBody{Recipient: recipientJSON{ID: psid}, Duration: int64(d / time.Second)}
	if err := c.handover(ctx, "/me/extend_thread_control", body); err != nil {
		return fmt.Errorf("graph: extend thread control: %w", err)
	}
	return nil
}

// handover posts a thread-control body and insists on {"success":true}. An
// explicit false is a refusal; anything unreadable may have taken effect
// and is reported as ErrUnexpectedResponse.
func (c *Client) handover(ctx context.Context, path string, body handoverBody) error {
	if body.Recipient.ID == "" {
		return invalid("empty psid", "This conversation has no Messenger recipient.")
	}
	if utf8.RuneCountInString(body.Metadata) > maxMetadataChars {
		return invalid("metadata longer than 1000 characters", "The handover note is too long for Messenger.")
	}
	var out struct {
		Success *bool `json:"success"`
	}
	if err := c.call(ctx, "POST", path, nil, body, &out); err != nil {
		return err
	}
	switch {
	case out.Success == nil:
		return fmt.Errorf("%w: no success field", ErrUnexpectedResponse)
	case !*out.Success:
		return &Error{HTTPStatus: 200, Message: "Graph answered success:false"}
	}
	return nil
}

// Owner is who holds thread control as Graph tells Baton (PROTOCOL.md §8.7).
// Exactly one of AppID, Idle and Hidden is set.
type Owner struct {
	AppID string // the owner's app id as text
	Idle  bool   // no app owns the thread
	// Hidden means 100/2018234: another Secondary (often the Page Inbox) owns
	// it and Graph will not say which; Baton goes by the events it has seen.
	Hidden bool
	// Expiration is when control lapses; only routing-cr reports it, and it
	// is the zero time otherwise.
	Expiration time.Time
}

type ownerJSON struct {
	AppID      json.RawMessage `json:"app_id"`
	Expiration json.RawMessage `json:"expiration"`
}

// ThreadOwner calls GET /me/thread_owner?recipient=<PSID>. It accepts the
// wrapped {"data":[{"thread_owner":…}]} form, {"data":[]} for an idle
// thread and the older unwrapped {"thread_owner":…}, with app_id as string
// or number; 100/2018234 becomes Owner{Hidden: true} with a nil error.
func (c *Client) ThreadOwner(ctx context.Context, psid string) (Owner, error) {
	if psid == "" {
		return Owner{}, fmt.Errorf("graph: thread owner: %w",
			invalid("empty psid", "This conversation has no Messenger recipient."))
	}
	var out struct {
		Data        json.RawMessage `json:"data"`
		ThreadOwner *ownerJSON      `json:"thread_owner"`
	}
	err := c.call(ctx, "GET", "/me/thread_owner", url.Values{"recipient": {psid}}, nil, &out)
	if IsOwnerHidden(err) {
		return Owner{Hidden: true}, nil
	}
	if err != nil {
		return Owner{}, fmt.Errorf("graph: thread owner: %w", err)
	}
	o, err := ownerFrom(out.Data, out.ThreadOwner)
	if err != nil {
		return Owner{}, fmt.Errorf("graph: thread owner: %w", err)
	}
	return o, nil
}

// ownerFrom picks the owner out of whichever form Graph answered with.
func ownerFrom(data json.RawMessage, unwrapped *ownerJSON) (Owner, error) {
	var entry *ownerJSON
	switch {
	case len(data) > 0 && string(data) != "null":
		var list []struct {
			ThreadOwner *ownerJSON `json:"thread_owner"`
		}
		if err := decode(data, &list); err != nil {
			return Owner{}, fmt.Errorf("%w: %w", ErrUnexpectedResponse, err)
		}
		if len(list) > 0 {
			entry = list[0].ThreadOwner
		}
	case unwrapped != nil:
		entry = unwrapped
	default:
		return Owner{}, fmt.Errorf("%w: neither data nor thread_owner", ErrUnexpectedResponse)
	}
	if entry == nil {
		return Owner{Idle: true}, nil
	}
	id, err := idText(entry.AppID)
	if err != nil {
		return Owner{}, fmt.Errorf("%w: app_id: %w", ErrUnexpectedResponse, err)
	}
	if id == "" {
		return Owner{Idle: true}, nil
	}
	o := Owner{AppID: id}
	// expiration is informative only: a malformed one is ignored, not fatal.
	if txt, err := idText(entry.Expiration); err == nil && txt != "" {
		if sec, err := strconv.ParseInt(txt, 10, 64); err == nil && sec > 0 {
			o.Expiration = time.Unix(sec, 0).UTC()
		}
	}
	return o, nil
}
