// Package graph is the Graph API client Baton uses: the Send API, sender
// actions, pass/request/extend thread control, thread_owner and the User
// Profile API (PROTOCOL.md §8), with Facebook's errors decoded into *Error
// and classified for the outbox (IsTransient, IsTimeout, IsWindowClosed …).
//
// Ids travel as text: JSON numbers in responses are read as their exact
// decimal digits, never through a float, because app ids exceed 2^53.
package graph

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
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// defaultTimeout bounds a call when Client.HTTP is nil. It matches the 30 s
// Baton waits for an echo after an indeterminate send (PROTOCOL.md §9), so a
// hung Graph call never holds an outbox worker longer than that wait.
const defaultTimeout = 30 * time.Second

// maxResponseBytes caps what is read from Graph: its answers are a few
// hundred bytes, and a misbehaving proxy must not exhaust memory.
const maxResponseBytes = 1 << 20

// redacted replaces secrets in messages; redactedParam does so in URLs,
// where brackets would be percent-encoded.
const (
	redacted      = "[redacted]"
	redactedParam = "REDACTED"
)

// Client calls the Graph API as one app on one Page: the Page access token
// identifies both (PROTOCOL.md §8.0). The zero value is not usable; set
// BaseURL, PageToken and AppSecret. A Client is safe for concurrent use.
type Client struct {
	BaseURL   string       // GRAPH_API_URL verbatim as prefix, e.g. "https://graph.facebook.com/v25.0"
	PageToken string       // Page access token, sent in the query as access_token
	AppSecret string       // appsecret_proof = hex HMAC-SHA256(key=secret, token), always sent
	HTTP      *http.Client // nil = a client with a 30 s timeout that does not follow redirects
	Logger    *slog.Logger // nil = no logging; tokens are redacted in anything logged
}

// httpClient returns Client.HTTP, or a fresh client with defaultTimeout that
// refuses redirects so the token in the query is never replayed to another
// host. Building it per call keeps the package free of shared state.
func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{
		Timeout: defaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// proof is the appsecret_proof for the Page token (PROTOCOL.md §8.0).
func (c *Client) proof() string {
	m := hmac.New(sha256.New, []byte(c.AppSecret))
	m.Write([]byte(c.PageToken))
	return hex.EncodeToString(m.Sum(nil))
}

// scrub removes the token and its proof from text that may be shown or
// logged, e.g. a Graph message quoting the token or a transport error. The
// app secret itself never leaves the process, so it cannot come back.
func (c *Client) scrub(s string) string {
	if c.PageToken != "" {
		s = strings.ReplaceAll(s, c.PageToken, redacted)
		s = strings.ReplaceAll(s, url.QueryEscape(c.PageToken), redacted)
	}
	return strings.ReplaceAll(s, c.proof(), redacted)
}

// redactURL returns u with access_token and appsecret_proof blanked, for logs
// and error strings.
func redactURL(u *url.URL) string {
	cp := *u
	q := cp.Query()
	for _, k := range []string{"access_token", "appsecret_proof"} {
		if q.Has(k) {
			q.Set(k, redactedParam)
		}
	}
	cp.RawQuery = q.Encode()
	return cp.String()
}

// endpoint checks the configuration and returns the URL for path, which
// starts with "/". BaseURL is a prefix taken verbatim (a trailing slash is
// dropped), so "/v25.0" and similar stay in front of path.
func (c *Client) endpoint(path string, q url.Values) (*url.URL, error) {
	if c.PageToken == "" || c.AppSecret == "" {
		return nil, &localError{kind: ErrNotConfigured, detail: "missing page token or app secret",
			plain: "The Page is not fully set up in Baton; an admin must add its token and app secret."}
	}
	u, err := url.Parse(strings.TrimSuffix(c.BaseURL, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &localError{kind: ErrNotConfigured, detail: fmt.Sprintf("bad base url %q", c.BaseURL),
			plain: "Baton's Graph API address is misconfigured."}
	}
	if q == nil {
		q = url.Values{}
	}
	q.Set("access_token", c.PageToken)
	q.Set("appsecret_proof", c.proof())
	u.RawQuery = q.Encode()
	return u, nil
}

// call performs one Graph request and decodes a success body into out (which
// may be nil). body, when not nil, is sent as JSON. Any answer carrying
// Graph's error envelope, whatever its status, becomes *Error.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, body, out any) error {
	u, err := c.endpoint(path, q)
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return &localError{kind: ErrNotConfigured, detail: c.scrub(err.Error()),
			plain: "Baton's Graph API address is misconfigured."}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	logURL := redactURL(u)

	resp, err := c.httpClient().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = logURL // the original carries the token
		}
		te := &transportError{msg: c.scrub(err.Error()), err: err}
		c.log(ctx, slog.LevelDebug, "graph call failed", method, logURL, 0, te)
		return te
	}
	defer resp.Body.Close()
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299

	if readErr != nil {
		if ok {
			err = fmt.Errorf("%w: reading body: %s", ErrUnexpectedResponse, c.scrub(readErr.Error()))
		} else {
			err = c.statusError(resp, nil)
		}
		c.log(ctx, slog.LevelDebug, "graph call failed", method, logURL, resp.StatusCode, err)
		return err
	}
	if ge := c.envelope(resp.StatusCode, raw); ge != nil {
		c.log(ctx, slog.LevelDebug, "graph error", method, logURL, resp.StatusCode, ge)
		return ge
	}
	if !ok {
		ge := c.statusError(resp, raw)
		c.log(ctx, slog.LevelDebug, "graph error", method, logURL, resp.StatusCode, ge)
		return ge
	}
	c.log(ctx, slog.LevelDebug, "graph call", method, logURL, resp.StatusCode, nil)
	if out == nil {
		return nil
	}
	if err := decode(raw, out); err != nil {
		return fmt.Errorf("%w: %s", ErrUnexpectedResponse, err)
	}
	return nil
}

// envelope returns the §9.1 error in raw, or nil when raw is not one.
func (c *Client) envelope(status int, raw []byte) *Error {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &env) != nil || len(env.Error) == 0 || string(env.Error) == "null" {
		return nil
	}
	var e struct {
		Message     string      `json:"message"`
		Type        string      `json:"type"`
		Code        json.Number `json:"code"`
		Subcode     json.Number `json:"error_subcode"`
		UserTitle   string      `json:"error_user_title"`
		UserMsg     string      `json:"error_user_msg"`
		FBTraceID   string      `json:"fbtrace_id"`
		IsTransient bool        `json:"is_transient"`
	}
	ge := &Error{HTTPStatus: status}
	if err := json.Unmarshal(env.Error, &e); err != nil {
		// {"error":"…"} as OAuth endpoints and some proxies answer.
		var s string
		if json.Unmarshal(env.Error, &s) != nil {
			return nil
		}
		ge.Message = c.scrub(s)
	} else {
		code, _ := e.Code.Int64()
		sub, _ := e.Subcode.Int64()
		ge.Code, ge.Subcode = int(code), int(sub)
		ge.Type = e.Type
		ge.Message = c.scrub(e.Message)
		ge.UserTitle = c.scrub(e.UserTitle)
		ge.UserMsg = c.scrub(e.UserMsg)
		ge.FBTraceID = e.FBTraceID
		ge.Transient = e.IsTransient
	}
	if ge.HTTPStatus >= 200 && ge.HTTPStatus <= 299 && ge.Code == 0 && ge.Message == "" {
		return nil // "error": {} on a success answer says nothing
	}
	ge.Transient = ge.Transient || isTransientStatus(ge.HTTPStatus, ge.Code, ge.Subcode)
	return ge
}

// statusError classifies a failure whose body is not Graph's envelope (a
// proxy's HTML page, a load balancer's 502) by its status alone.
func (c *Client) statusError(resp *http.Response, raw []byte) *Error {
	msg := resp.Status
	if snippet := strings.TrimSpace(string(raw)); snippet != "" && len(snippet) <= 200 &&
		!strings.HasPrefix(snippet, "<") {
		msg += ": " + c.scrub(snippet)
	}
	return &Error{
		HTTPStatus: resp.StatusCode,
		Message:    msg,
		Transient:  isTransientStatus(resp.StatusCode, 0, 0),
	}
}

// log records one call at level; nothing is logged without a Logger. The URL
// is already redacted, and errors are scrubbed at creation.
func (c *Client) log(ctx context.Context, level slog.Level, msg, method, u string, status int, err error) {
	if c.Logger == nil {
		return
	}
	attrs := []slog.Attr{slog.String("method", method), slog.String("url", u)}
	if status != 0 {
		attrs = append(attrs, slog.Int("status", status))
	}
	var ge *Error
	if errors.As(err, &ge) {
		attrs = append(attrs, slog.Int("code", ge.Code), slog.Int("subcode", ge.Subcode),
			slog.String("fbtrace_id", ge.FBTraceID))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.Logger.LogAttrs(ctx, level, msg, attrs...)
}

// decode reads a JSON success body with numbers kept as text.
func decode(raw []byte, out any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// idText reads an id sent as a JSON string or number (PROTOCOL.md §1) as its
// exact text; null or absent is "". Numbers must be plain integers so that a
// float-mangled id is rejected instead of silently compared wrong.
func idText(raw json.RawMessage) (string, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return "", nil
	}
	if s[0] == '"' {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", fmt.Errorf("decode id: %w", err)
		}
		return v, nil
	}
	if !isDigits(s) {
		return "", fmt.Errorf("decode id: %s is not an integer", s)
	}
	return s, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
