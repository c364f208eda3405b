package messenger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/baton-chat/baton/internal/baton"
)

// Delivery is one parsed webhook POST.
type Delivery struct {
	Object string
	// PageIDs lists every entry's Page id, in order.
	PageIDs []string
	Events  []baton.Event
}

// ErrMalformed wraps every reason a body is not a usable webhook delivery.
var ErrMalformed = errors.New("malformed webhook body")

// ID is a Graph id decoded from a JSON number or a digit string, kept as
// exact decimal text: ids can exceed 2^53, so they never pass through a
// float (PROTOCOL.md §1). null decodes to "".
type ID string

// UnmarshalJSON implements json.Unmarshaler.
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*id = ""
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(strings.TrimSpace(s))
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		// A number written with a fraction or exponent that is still an
		// integer ("123.0") is accepted by its integral text.
		s := string(b)
		if strings.ContainsAny(s, ".eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || f != math.Trunc(f) {
				return fmt.Errorf("id %s is not an integer", s)
			}
			s = strconv.FormatFloat(f, 'f', -1, 64)
		}
		*id = ID(s)
		return nil
	}
	return fmt.Errorf("id must be a number or a string, got %.20s", b)
}

// Millis is an epoch-milliseconds time from a JSON number (integer,
// fraction or exponent) or a digit string, rounded to the millisecond.
type Millis struct {
	V   int64
	Set bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *Millis) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*m = Millis{}
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if s == "" {
		*m = Millis{}
		return nil
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*m = Millis{V: v, Set: true}
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > 1e17 {
		return fmt.Errorf("bad time %.30s", s)
	}
	*m = Millis{V: int64(math.Round(f)), Set: true}
	return nil
}

type wireEnvelope struct {
	Object string      `json:"object"`
	Entry  []wireEntry `json:"entry"`
}

type wireEntry struct {
	ID        ID                `json:"id"`
	Messaging []json.RawMessage `json:"messaging"`
	Standby   []json.RawMessage `json:"standby"`
}

type wireParty struct {
	ID      ID     `json:"id"`
	UserRef string `json:"user_ref"`
}

type wireEvent struct {
	Sender    *wireParty `json:"sender"`
	Recipient *wireParty `json:"recipient"`
	Timestamp Millis     `json:"timestamp"`

	Message *struct {
		MID         string          `json:"mid"`
		Text        *string         `json:"text"`
		Attachments json.RawMessage `json:"attachments"`
		QuickReply  *struct {
			Payload string `json:"payload"`
		} `json:"quick_reply"`
		ReplyTo *struct {
			MID string `json:"mid"`
		} `json:"reply_to"`
		IsEcho   bool    `json:"is_echo"`
		AppID    ID      `json:"app_id"`
		Metadata *string `json:"metadata"`
	} `json:"message"`
	Postback *struct {
		MID     string `json:"mid"`
		Title   string `json:"title"`
		Payload string `json:"payload"`
	} `json:"postback"`
	Read *struct {
		Watermark Millis `json:"watermark"`
	} `json:"read"`
	Delivery *struct {
		MIDs      []string `json:"mids"`
		Watermark Millis   `json:"watermark"`
	} `json:"delivery"`
	Reaction *struct {
		Reaction string `json:"reaction"`
		Emoji    string `json:"emoji"`
		Action   string `json:"action"`
		MID      string `json:"mid"`
	} `json:"reaction"`
	Referral json.RawMessage     `json:"referral"`
	Optin    json.RawMessage     `json:"optin"`
	Pass     *wireHandover       `json:"pass_thread_control"`
	Take     *wireHandover       `json:"take_thread_control"`
	Request  *wireHandover       `json:"request_thread_control"`
	AppRoles map[string][]string `json:"app_roles"`
}

type wireHandover struct {
	PreviousOwner  ID      `json:"previous_owner_app_id"`
	NewOwner       ID      `json:"new_owner_app_id"`
	RequestedOwner ID      `json:"requested_owner_app_id"`
	Metadata       *string `json:"metadata"`
}

// CheckStorable rejects bodies PostgreSQL would refuse in a text column
// (invalid UTF-8, a \u0000 escape) before they join a group commit, so that
// one bad delivery cannot fail its neighbours.
func CheckStorable(body []byte) error {
	if !utf8.Valid(body) {
		return fmt.Errorf("%w: body is not valid UTF-8", ErrMalformed)
	}
	if hasNULEscape(body) {
		return fmt.Errorf("%w: body contains a NUL character", ErrMalformed)
	}
	return nil
}

// hasNULEscape finds a \u0000 escape that is one: preceded by an even
// number of backslashes ("\\u0000" is a backslash and the text u0000).
func hasNULEscape(body []byte) bool {
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(`\u0000`))
		if j < 0 {
			return false
		}
		at := i + j
		n := 0
		for k := at - 1; k >= 0 && body[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return true
		}
		i = at + 1
	}
}

// Parse decodes a webhook body into its events. Every entry and every
// element of both arrays is kept; an event whose kind Baton does not know,
// or whose known kind is malformed, is returned as KindUnknown rather than
// failing the delivery. Only a body that is not a JSON envelope at all is
// an error (wrapping ErrMalformed).
func Parse(body []byte) (*Delivery, error) {
	if err := CheckStorable(body); err != nil {
		return nil, err
	}
	var env wireEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	d := &Delivery{Object: env.Object}
	for ei, entry := range env.Entry {
		page := string(entry.ID)
		d.PageIDs = append(d.PageIDs, page)
		for _, ch := range []struct {
			name baton.Channel
			raw  []json.RawMessage
		}{{baton.ChannelMessaging, entry.Messaging}, {baton.ChannelStandby, entry.Standby}} {
			for i, raw := range ch.raw {
				ev := parseEvent(raw)
				ev.PageID, ev.Channel, ev.Entry, ev.Index = page, ch.name, ei, i
				ev.DedupeKey = boundedKey(dedupeKey(&ev))
				d.Events = append(d.Events, ev)
			}
		}
	}
	return d, nil
}

func parseEvent(raw json.RawMessage) baton.Event {
	ev := baton.Event{Raw: raw, Kind: baton.KindUnknown}
	var w wireEvent
	if err := json.Unmarshal(raw, &w); err != nil {
		return ev
	}
	ev.TimestampMS = w.Timestamp.V
	var sender, recipient string
	if w.Sender != nil {
		sender, ev.UserRef = string(w.Sender.ID), w.Sender.UserRef
	}
	if w.Recipient != nil {
		recipient = string(w.Recipient.ID)
	}
	ev.PSID = sender
	switch {
	case w.Message != nil:
		m := &baton.EventMessage{MID: w.Message.MID, IsEcho: w.Message.IsEcho, AppID: string(w.Message.AppID)}
		if w.Message.Text != nil {
			m.Text = *w.Message.Text
		}
		if len(w.Message.Attachments) > 0 && string(w.Message.Attachments) != "null" {
			m.Attachments = storableJSON(w.Message.Attachments)
		}
		if w.Message.QuickReply != nil {
			m.QuickReply = w.Message.QuickReply.Payload
		}
		if w.Message.ReplyTo != nil {
			m.ReplyTo = w.Message.ReplyTo.MID
		}
		if w.Message.Metadata != nil {
			m.Metadata = *w.Message.Metadata
		}
		ev.Message = m
		ev.Kind = baton.KindMessage
		if m.IsEcho {
			ev.Kind = baton.KindEcho
			ev.PSID = recipient
		}
	case w.Postback != nil:
		ev.Kind = baton.KindPostback
		ev.Postback = &baton.EventPostback{MID: w.Postback.MID, Title: w.Postback.Title, Payload: w.Postback.Payload}
	case w.Read != nil:
		ev.Kind = baton.KindRead
		ev.Receipt = &baton.EventReceipt{Watermark: w.Read.Watermark.V}
	case w.Delivery != nil:
		ev.Kind = baton.KindDelivery
		ev.Receipt = &baton.EventReceipt{Watermark: w.Delivery.Watermark.V, MIDs: w.Delivery.MIDs}
	case w.Reaction != nil:
		ev.Kind = baton.KindReaction
		ev.Reaction = &baton.EventReaction{MID: w.Reaction.MID, Reaction: w.Reaction.Reaction, Emoji: w.Reaction.Emoji, Action: w.Reaction.Action}
	case w.Referral != nil && string(w.Referral) != "null":
		ev.Kind = baton.KindReferral
	case w.Optin != nil && string(w.Optin) != "null":
		ev.Kind = baton.KindOptin
	case w.Pass != nil:
		ev.Kind, ev.Handover = baton.KindPass, handover(w.Pass)
	case w.Take != nil:
		ev.Kind, ev.Handover = baton.KindTake, handover(w.Take)
	case w.Request != nil:
		ev.Kind, ev.Handover = baton.KindRequest, handover(w.Request)
	case w.AppRoles != nil:
		ev.Kind, ev.AppRoles, ev.PSID = baton.KindAppRoles, w.AppRoles, ""
	}
	if ev.UserRef != "" && sender == "" && ev.Kind != baton.KindEcho {
		ev.PSID = "" // chat-plugin guests: stored without a conversation
	}
	return ev
}

func handover(h *wireHandover) *baton.EventHandover {
	out := &baton.EventHandover{PreviousOwner: string(h.PreviousOwner), NewOwner: string(h.NewOwner), RequestedOwner: string(h.RequestedOwner)}
	if h.Metadata != nil {
		out.Metadata = *h.Metadata
	}
	return out
}

// storableJSON returns raw unchanged unless PostgreSQL's jsonb would refuse
// what Go's decoder accepts: a lone UTF-16 surrogate escape, or a number
// beyond numeric's range. Such a value would fail its delivery on every
// retry, so it is re-encoded: surrogates become U+FFFD (as Go decodes
// them), out-of-range numbers become strings.
func storableJSON(raw json.RawMessage) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	rewrite := bytes.Contains(raw, []byte(`\ud`)) || bytes.Contains(raw, []byte(`\uD`))
	v = storableValue(v, &rewrite)
	if !rewrite {
		return raw
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return out
}

func storableValue(v any, rewrite *bool) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = storableValue(e, rewrite)
		}
	case []any:
		for i, e := range x {
			x[i] = storableValue(e, rewrite)
		}
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			*rewrite = true
			return string(x)
		}
	}
	return v
}

// dedupeKey is the per-Page key of PROTOCOL.md §4.5.
func dedupeKey(ev *baton.Event) string {
	ts := strconv.FormatInt(ev.TimestampMS, 10)
	switch ev.Kind {
	case baton.KindMessage, baton.KindEcho:
		if ev.Message.MID != "" {
			return "mid:" + ev.Message.MID
		}
	case baton.KindPostback:
		p := ev.Postback
		if p.MID != "" {
			return "mid:" + p.MID
		}
		return join("postback", ev.PSID, ts, p.Title, p.Payload)
	case baton.KindRead:
		return join("read", ev.PSID, strconv.FormatInt(ev.Receipt.Watermark, 10))
	case baton.KindDelivery:
		mids := append([]string(nil), ev.Receipt.MIDs...)
		sort.Strings(mids)
		return join("delivery", ev.PSID, strconv.FormatInt(ev.Receipt.Watermark, 10), strings.Join(mids, ","))
	case baton.KindReaction:
		r := ev.Reaction
		return join("reaction", ev.PSID, r.MID, r.Action, r.Reaction, ts)
	case baton.KindPass, baton.KindTake, baton.KindRequest:
		h := ev.Handover
		return join(string(ev.Kind), ev.PSID, ts, h.PreviousOwner, h.NewOwner, h.RequestedOwner)
	case baton.KindAppRoles:
		canon, _ := json.Marshal(canonicalRoles(ev.AppRoles))
		return join("app_roles", ts, string(canon))
	}
	sum := sha256.Sum256(ev.Raw)
	return "raw:" + hex.EncodeToString(sum[:])
}

// boundedKey keeps keys short enough for a btree index: long ones (a
// postback with a big payload) are replaced by their SHA-256.
func boundedKey(k string) string {
	if len(k) <= 200 {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return "h:" + hex.EncodeToString(sum[:])
}

func canonicalRoles(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		s := append([]string(nil), v...)
		sort.Strings(s)
		out[k] = s
	}
	return out // encoding/json sorts map keys
}

// join builds a key from parts that cannot be confused with one another:
// each part is length-prefixed.
func join(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}
