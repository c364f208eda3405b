package demobot

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// graphVersion is the version prefix the bot calls, the one PROTOCOL.md §8.0
// shows; the emulator accepts any.
const graphVersion = "v25.0"

// graphError is Facebook's error envelope (PROTOCOL.md §9.1), kept typed so the
// bot can tell "not the owner" from other failures.
type graphError struct {
	Status  int
	Message string `json:"message"`
	Code    int    `json:"code"`
	Subcode int    `json:"error_subcode"`
}

func (e *graphError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("graph: status %d", e.Status)
	}
	return fmt.Sprintf("graph: %s (code %d/%d, status %d)", e.Message, e.Code, e.Subcode, e.Status)
}

// isNotOwner reports whether err says the bot does not own the thread it
// tried to pass (100/2534037).
func isNotOwner(err error) bool {
	var ge *graphError
	return errors.As(err, &ge) && ge.Subcode == 2534037
}

// errNotRegistered is returned by Graph calls made before Register, when the
// bot has no page access token yet.
var errNotRegistered = errors.New("demobot: not registered with the emulator")

// call sends one request to the emulator. path starts with "/"; graph calls
// get the version prefix, the access token and appsecret_proof in the query
// (PROTOCOL.md §8.0). A non-2xx answer is decoded into a *graphError.
func (b *Bot) call(ctx context.Context, method, path string, query url.Values, in, out any, graph bool) error {
	if query == nil {
		query = url.Values{}
	}
	u := strings.TrimRight(b.cfg.EmulatorURL, "/")
	if graph {
		token := b.token()
		if token == "" {
			return errNotRegistered
		}
		query.Set("access_token", token)
		mac := hmac.New(sha256.New, []byte(b.cfg.Secret))
		mac.Write([]byte(token))
		query.Set("appsecret_proof", hex.EncodeToString(mac.Sum(nil)))
		u += "/" + graphVersion
	}
	u += path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s: %w", path, err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("build %s: %w", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var env struct {
			Error *graphError `json:"error"`
		}
		if json.Unmarshal(raw, &env) == nil && env.Error != nil {
			env.Error.Status = resp.StatusCode
			return fmt.Errorf("%s %s: %w", method, path, env.Error)
		}
		return fmt.Errorf("%s %s: %w", method, path, &graphError{Status: resp.StatusCode})
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return nil
}

// recipient is the Send API and handover `recipient` object.
type recipient struct {
	ID string `json:"id"`
}

// sendText sends a RESPONSE text (PROTOCOL.md §8.1), with quick replies when
// given. The bot only ever answers a person who just wrote, so RESPONSE is right.
func (b *Bot) sendText(ctx context.Context, psid, text string, replies []quickReply) error {
	msg := map[string]any{"text": text}
	if len(replies) > 0 {
		msg["quick_replies"] = replies
	}
	req := map[string]any{
		"recipient":      recipient{ID: psid},
		"messaging_type": "RESPONSE",
		"message":        msg,
	}
	if err := b.call(ctx, http.MethodPost, "/me/messages", nil, req, nil, true); err != nil {
		return fmt.Errorf("send text: %w", err)
	}
	return nil
}

// passThread passes control of psid's thread to target (PROTOCOL.md §8.3).
func (b *Bot) passThread(ctx context.Context, psid, target, metadata string) error {
	req := map[string]any{
		"recipient":     recipient{ID: psid},
		"target_app_id": json.Number(target),
		"metadata":      metadata,
	}
	if err := b.call(ctx, http.MethodPost, "/me/pass_thread_control", nil, req, nil, true); err != nil {
		return fmt.Errorf("pass thread control: %w", err)
	}
	return nil
}

// takeThread takes control of psid's thread back (PROTOCOL.md §8.4). Either
// documented success shape is fine: only the status matters.
func (b *Bot) takeThread(ctx context.Context, psid, metadata string) error {
	req := map[string]any{
		"recipient": recipient{ID: psid},
		"metadata":  metadata,
	}
	if err := b.call(ctx, http.MethodPost, "/me/take_thread_control", nil, req, nil, true); err != nil {
		return fmt.Errorf("take thread control: %w", err)
	}
	return nil
}

// secondaryTarget picks the app to hand a person to: the first Secondary that
// is not the Page Inbox, else the Page Inbox, so a Page without Baton still
// reaches a human (PROTOCOL.md §8.8).
func (b *Bot) secondaryTarget(ctx context.Context) (string, error) {
	var resp struct {
		Data []struct {
			ID   appID  `json:"id"`
			Name string `json:"name"`
		} `json:"data"`
	}
	q := url.Values{"fields": {"id,name"}}
	if err := b.call(ctx, http.MethodGet, "/me/secondary_receivers", q, nil, &resp, true); err != nil {
		return "", fmt.Errorf("secondary receivers: %w", err)
	}
	inbox := ""
	for _, app := range resp.Data {
		switch id := string(app.ID); {
		case id == "" || id == b.cfg.AppID:
		case id == pageInboxAppID:
			inbox = id
		default:
			return id, nil
		}
	}
	if inbox != "" {
		return inbox, nil
	}
	return "", errors.New("secondary receivers: none on this page")
}

// firstName fetches a person's first name with the User Profile API
// (PROTOCOL.md §8.9). A hidden profile answers {} and yields "".
func (b *Bot) firstName(ctx context.Context, psid string) (string, error) {
	var resp struct {
		FirstName string `json:"first_name"`
	}
	q := url.Values{"fields": {"first_name"}}
	if err := b.call(ctx, http.MethodGet, "/"+url.PathEscape(psid), q, nil, &resp, true); err != nil {
		return "", fmt.Errorf("user profile: %w", err)
	}
	return resp.FirstName, nil
}

// ignoringRequests asks the emulator whether the ignore_thread_requests fault
// is on, which makes the bot play a Primary that never answers requests.
func (b *Bot) ignoringRequests(ctx context.Context) (bool, error) {
	var faults struct {
		IgnoreThreadRequests bool `json:"ignore_thread_requests"`
	}
	if err := b.call(ctx, http.MethodGet, "/_emulator/faults", nil, nil, &faults, false); err != nil {
		return false, fmt.Errorf("read faults: %w", err)
	}
	return faults.IgnoreThreadRequests, nil
}
