package conversation

import (
	"encoding/json"
	"sort"
	"strings"
	"unicode/utf8"
)

// MetadataLimit is the most Baton puts in a pass or request's metadata
// (PROTOCOL.md §13.1: at most 1000 bytes).
const MetadataLimit = 1000

// Outcomes an agent may pick at Done; "idle" is Baton's own auto-return.
var Outcomes = []string{"resolved", "unresolved", "escalated", "spam"}

// ValidOutcome reports whether o is an outcome an agent may pick.
func ValidOutcome(o string) bool {
	for _, x := range Outcomes {
		if x == o {
			return true
		}
	}
	return false
}

// Agent names the person who acted, as bots receive it.
type Agent struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// DoneMetadata is the hand-back contract of PROTOCOL.md §13.1. Keys are
// never renamed; new keys never change the meaning of old ones.
type DoneMetadata struct {
	V              int      `json:"v"`
	Outcome        string   `json:"outcome"`
	Note           string   `json:"note,omitempty"`
	Truncated      bool     `json:"truncated,omitempty"`
	Tags           []string `json:"tags,omitempty"`
	Agent          *Agent   `json:"agent,omitempty"`
	ConversationID string   `json:"conversation_id"`
	HandledSeconds int64    `json:"handled_seconds"`
}

// Encode returns the JSON text, at most MetadataLimit bytes: the note is
// shortened first (marking "truncated"), then tags are dropped.
func (m DoneMetadata) Encode() string {
	m.V = 1
	b, _ := json.Marshal(m)
	if len(b) <= MetadataLimit {
		return string(b)
	}
	over := len(b) - MetadataLimit
	if m.Note != "" {
		m.Truncated = true
		b, _ = json.Marshal(m)
		over = len(b) - MetadataLimit
		m.Note = shorten(m.Note, over)
		b, _ = json.Marshal(m)
		for len(b) > MetadataLimit && m.Note != "" {
			m.Note = shorten(m.Note, len(b)-MetadataLimit)
			b, _ = json.Marshal(m)
		}
		if len(b) <= MetadataLimit {
			return string(b)
		}
	}
	m.Tags = nil
	b, _ = json.Marshal(m)
	return string(b)
}

// shorten drops at least n bytes of JSON-encoded text from the end of s
// (an escaped character counts its escape), ending with "…".
func shorten(s string, n int) string {
	s = strings.TrimSuffix(s, "…")
	enc := func(x string) int { b, _ := json.Marshal(x); return len(b) }
	target := enc(s) - n - len(`\u2026`)
	for enc(s) > target && s != "" {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	if s == "" {
		return ""
	}
	return s + "…"
}

// RequestMetadata is what a request_thread_control carries (§13.2).
type RequestMetadata struct {
	V              int    `json:"v"`
	Reason         string `json:"reason"`
	RequestedBy    *Agent `json:"requested_by,omitempty"`
	ConversationID string `json:"conversation_id"`
}

// Encode returns the JSON text within MetadataLimit, shortening the reason.
func (m RequestMetadata) Encode() string {
	m.V = 1
	b, _ := json.Marshal(m)
	for len(b) > MetadataLimit && m.Reason != "" {
		m.Reason = shorten(m.Reason, len(b)-MetadataLimit)
		b, _ = json.Marshal(m)
	}
	return string(b)
}

// BotMetadata is the bot's pass metadata as the console shows it
// (§13.3): known fields of a JSON object, the other keys listed, or the
// raw text.
type BotMetadata struct {
	Raw      string
	IsJSON   bool
	Reason   string
	Summary  string
	Team     string
	Priority string
	Agent    string
	// Other lists the remaining keys with their values as JSON text.
	Other [][2]string
}

// ParseBotMetadata reads pass metadata from the bot.
func ParseBotMetadata(s string) BotMetadata {
	md := BotMetadata{Raw: s}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &obj); err != nil || obj == nil {
		return md
	}
	md.IsJSON = true
	str := func(k string) string {
		v, ok := obj[k]
		if !ok {
			return ""
		}
		delete(obj, k)
		var x string
		if json.Unmarshal(v, &x) == nil {
			return x
		}
		return string(v)
	}
	md.Reason, md.Summary, md.Team, md.Priority, md.Agent = str("reason"), str("summary"), str("team"), str("priority"), str("agent")
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := string(obj[k])
		var x string
		if json.Unmarshal(obj[k], &x) == nil {
			v = x
		}
		md.Other = append(md.Other, [2]string{k, v})
	}
	return md
}
