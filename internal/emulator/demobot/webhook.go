package demobot

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/baton-chat/baton/internal/messenger"
)

// maxBody caps a webhook delivery; the emulator batches at most 100 small
// events, far below this.
const maxBody = 4 << 20

// ServeHTTP is the bot's webhook: GET answers the verification challenge
// (PROTOCOL.md §3), POST takes signed deliveries (§4). A POST is answered as
// soon as its signature and JSON are checked; the replies it causes are sent
// afterwards, in order per person, so that a slow Graph API never makes the
// platform time out and retry.
func (b *Bot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		b.serveChallenge(w, r)
	case http.MethodPost:
		b.serveDelivery(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (b *Bot) serveChallenge(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("hub.mode") != "subscribe" ||
		subtle.ConstantTimeCompare([]byte(q.Get("hub.verify_token")), []byte(b.cfg.VerifyToken)) != 1 {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	challenge := q.Get("hub.challenge")
	if challenge == "" {
		http.Error(w, "missing hub.challenge", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, challenge)
}

func (b *Bot) serveDelivery(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if !validSignature(b.cfg.Secret, r.Header.Get(messenger.HeaderSignature256), body) {
		b.log.Warn("demobot: webhook with a bad signature")
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	events, err := parseDelivery(body)
	if err != nil {
		b.log.Warn("demobot: malformed webhook", "err", err)
		http.Error(w, "malformed JSON", http.StatusBadRequest)
		return
	}
	if !b.accept(events) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "EVENT_RECEIVED")
}

// validSignature checks X-Hub-Signature-256 over the raw bytes in constant time
// (PROTOCOL.md §4.3). The hex may be in either case.
func validSignature(secret, header string, body []byte) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// appID is an id that arrives as a JSON number or a digit string (PROTOCOL.md
// §1). Numbers are kept as their exact decimal text, never passed through a
// float, because app ids can exceed 2^53.
type appID string

// UnmarshalJSON accepts a string, a number or null.
func (id *appID) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		*id = ""
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("decode id: %w", err)
		}
		*id = appID(strings.TrimSpace(s))
	default:
		var n json.Number
		if err := json.Unmarshal(data, &n); err != nil {
			return fmt.Errorf("decode id: %w", err)
		}
		*id = appID(n.String())
	}
	return nil
}

// looseString is a field that should be a string but that the bot must not
// choke on when it is null, missing or some other JSON value (metadata).
type looseString string

// UnmarshalJSON takes a string as is, null as "", and any other value as its
// JSON text.
func (s *looseString) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		*s = ""
		return nil
	}
	var str string
	if err := json.Unmarshal(data, &str); err == nil {
		*s = looseString(str)
		return nil
	}
	*s = looseString(data)
	return nil
}

// timestamp is epoch milliseconds sent as a number (possibly with a fraction
// or exponent) or a digit string (PROTOCOL.md §1).
type timestamp int64

// UnmarshalJSON accepts a number, a digit string or null.
func (t *timestamp) UnmarshalJSON(data []byte) error {
	data = bytes.Trim(bytes.TrimSpace(data), `"`)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		*t = 0
		return nil
	}
	if n, err := strconv.ParseInt(string(data), 10, 64); err == nil {
		*t = timestamp(n)
		return nil
	}
	f, err := strconv.ParseFloat(string(data), 64)
	if err != nil {
		return fmt.Errorf("decode timestamp: %w", err)
	}
	*t = timestamp(int64(f + 0.5))
	return nil
}

// party is a sender or recipient.
type party struct {
	ID appID `json:"id"`
}

// event is the part of a webhook event (PROTOCOL.md §5) the bot reads. Kinds it
// does not know decode to an event with every field nil, which it ignores.
type event struct {
	Sender    *party    `json:"sender"`
	Recipient *party    `json:"recipient"`
	Timestamp timestamp `json:"timestamp"`
	Message   *struct {
		MID         string            `json:"mid"`
		Text        string            `json:"text"`
		IsEcho      bool              `json:"is_echo"`
		AppID       appID             `json:"app_id"`
		Metadata    looseString       `json:"metadata"`
		Attachments []json.RawMessage `json:"attachments"`
		QuickReply  *struct {
			Payload string `json:"payload"`
		} `json:"quick_reply"`
	} `json:"message"`
	Postback *struct {
		MID     string `json:"mid"`
		Title   string `json:"title"`
		Payload string `json:"payload"`
	} `json:"postback"`
	Pass *struct {
		NewOwner      appID       `json:"new_owner_app_id"`
		PreviousOwner appID       `json:"previous_owner_app_id"`
		Metadata      looseString `json:"metadata"`
	} `json:"pass_thread_control"`
	Take *struct {
		NewOwner      appID       `json:"new_owner_app_id"`
		PreviousOwner appID       `json:"previous_owner_app_id"`
		Metadata      looseString `json:"metadata"`
	} `json:"take_thread_control"`
	Request *struct {
		RequestedOwner appID       `json:"requested_owner_app_id"`
		Metadata       looseString `json:"metadata"`
	} `json:"request_thread_control"`
}

// incoming is one event with the channel it came on.
type incoming struct {
	standby bool
	ev      event
}

// psid is the person the event is about: the recipient for echoes, else the
// sender (PROTOCOL.md §5). Empty for events without a person (app_roles).
func (in incoming) psid() string {
	if in.ev.Message != nil && in.ev.Message.IsEcho {
		if in.ev.Recipient != nil {
			return string(in.ev.Recipient.ID)
		}
		return ""
	}
	if in.ev.Sender != nil {
		return string(in.ev.Sender.ID)
	}
	return ""
}

// parseDelivery decodes a webhook body into its events, from every entry and
// both arrays. Only a body that is not a JSON envelope is an error: an event
// the bot cannot decode is skipped, so that one odd event never costs the
// others in its batch.
func parseDelivery(body []byte) ([]incoming, error) {
	var env struct {
		Object string `json:"object"`
		Entry  []struct {
			Messaging []json.RawMessage `json:"messaging"`
			Standby   []json.RawMessage `json:"standby"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	if env.Object != "" && env.Object != "page" {
		return nil, nil
	}
	var out []incoming
	for _, e := range env.Entry {
		for _, raw := range e.Messaging {
			var ev event
			if json.Unmarshal(raw, &ev) == nil {
				out = append(out, incoming{ev: ev})
			}
		}
		for _, raw := range e.Standby {
			var ev event
			if json.Unmarshal(raw, &ev) == nil {
				out = append(out, incoming{standby: true, ev: ev})
			}
		}
	}
	return out, nil
}
