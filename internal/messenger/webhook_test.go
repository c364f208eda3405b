package messenger

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/baton-chat/baton/internal/baton"
)

// wantEvent is what one fixture event must parse to. check, when set,
// looks at the kind-specific part.
type wantEvent struct {
	kind    baton.EventKind
	page    string
	psid    string
	channel baton.Channel
	entry   int
	index   int
	ts      int64
	check   func(t *testing.T, ev *baton.Event)
}

const (
	page  = "100200300"
	psid  = "700800900"
	bot   = "1500000001"
	batn  = "2500000002"
	inbox = "263902037430900"
)

func msg(ev *baton.Event) *baton.EventMessage {
	if ev.Message == nil {
		return &baton.EventMessage{}
	}
	return ev.Message
}

func hand(ev *baton.Event) *baton.EventHandover {
	if ev.Handover == nil {
		return &baton.EventHandover{}
	}
	return ev.Handover
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// Every fixture of testdata parses to exactly the listed events: kinds,
// thread keys, channels, positions, times and the kind-specific fields
// PROTOCOL.md §5 names.
func TestParseFixtures(t *testing.T) {
	m, s := baton.ChannelMessaging, baton.ChannelStandby
	tests := []struct {
		file   string
		object string
		pages  []string
		events []wantEvent
	}{
		{"message_text.json", "page", []string{page}, []wantEvent{{baton.KindMessage, page, psid, m, 0, 0, 1458692752478, func(t *testing.T, ev *baton.Event) {
			eq(t, "mid", msg(ev).MID, "m_AbC1")
			eq(t, "text", msg(ev).Text, "hello, world! äöå 😀 https://x.example")
			eq(t, "quick reply", msg(ev).QuickReply, "TALK_TO_HUMAN")
			eq(t, "reply to", msg(ev).ReplyTo, "m_XyZ9")
			eq(t, "attachments", len(msg(ev).Attachments), 0)
			eq(t, "echo", msg(ev).IsEcho, false)
		}}}},
		{"message_attachments.json", "page", []string{page}, []wantEvent{{baton.KindMessage, page, psid, m, 0, 0, 1458692752479, func(t *testing.T, ev *baton.Event) {
			eq(t, "text", msg(ev).Text, "")
			var atts []map[string]any
			if err := json.Unmarshal(msg(ev).Attachments, &atts); err != nil || len(atts) != 3 {
				t.Fatalf("attachments %s: %v", msg(ev).Attachments, err)
			}
			// Kept verbatim, escapes and big numbers included.
			if !bytes.Contains(msg(ev).Attachments, []byte(`"sticker_id":369239263222822`)) || !bytes.Contains(msg(ev).Attachments, []byte(`https:\/\/cdn.example`)) {
				t.Errorf("attachments not verbatim: %s", msg(ev).Attachments)
			}
		}}}},
		{"message_legacy_mid.json", "page", []string{page}, []wantEvent{{baton.KindMessage, page, psid, m, 0, 0, 1457764197627, func(t *testing.T, ev *baton.Event) {
			eq(t, "mid", msg(ev).MID, "mid.1457764197618:41d102a3e1ae206a38")
			eq(t, "dedupe key", ev.DedupeKey, "mid:mid.1457764197618:41d102a3e1ae206a38")
			if !bytes.Contains(msg(ev).Attachments, []byte(`"payload":null`)) {
				t.Errorf("legacy fallback lost: %s", msg(ev).Attachments)
			}
		}}}},
		{"echo_number_app_id.json", "page", []string{page}, []wantEvent{{baton.KindEcho, page, psid, m, 0, 0, 1457764197627, func(t *testing.T, ev *baton.Event) {
			eq(t, "app id", msg(ev).AppID, batn)
			eq(t, "metadata", msg(ev).Metadata, "baton:7")
			eq(t, "is echo", msg(ev).IsEcho, true)
			eq(t, "text", msg(ev).Text, "On it!")
		}}}},
		{"echo_string_app_id_standby.json", "page", []string{page}, []wantEvent{{baton.KindEcho, page, psid, s, 0, 0, 1457764197628, func(t *testing.T, ev *baton.Event) {
			eq(t, "app id", msg(ev).AppID, bot)
			eq(t, "metadata", msg(ev).Metadata, "")
			if len(msg(ev).Attachments) == 0 {
				t.Error("template attachment lost")
			}
		}}}},
		{"echo_page_inbox.json", "page", []string{page}, []wantEvent{{baton.KindEcho, page, psid, s, 0, 0, 1457764197629, func(t *testing.T, ev *baton.Event) {
			eq(t, "app id", msg(ev).AppID, inbox)
		}}}},
		{"postback.json", "page", []string{page}, []wantEvent{{baton.KindPostback, page, psid, m, 0, 0, 1458692752480, func(t *testing.T, ev *baton.Event) {
			eq(t, "postback", *ev.Postback, baton.EventPostback{MID: "m_Pb2", Title: "Talk to a person", Payload: "HUMAN"})
			eq(t, "dedupe key", ev.DedupeKey, "mid:m_Pb2")
		}}}},
		{"postback_string_timestamp_no_mid.json", "page", []string{page}, []wantEvent{{baton.KindPostback, page, psid, s, 0, 0, 1458692752481, func(t *testing.T, ev *baton.Event) {
			eq(t, "postback", *ev.Postback, baton.EventPostback{Title: "Get Started"})
			if strings.HasPrefix(ev.DedupeKey, "mid:") || !strings.Contains(ev.DedupeKey, "1458692752481") {
				t.Errorf("dedupe key %q: want one from psid, timestamp, title, payload", ev.DedupeKey)
			}
		}}}},
		{"read.json", "page", []string{page}, []wantEvent{{baton.KindRead, page, psid, m, 0, 0, 1458668856463, func(t *testing.T, ev *baton.Event) {
			eq(t, "watermark", ev.Receipt.Watermark, int64(1458668856253))
		}}}},
		{"delivery_no_timestamp.json", "page", []string{page}, []wantEvent{{baton.KindDelivery, page, psid, m, 0, 0, 0, func(t *testing.T, ev *baton.Event) {
			eq(t, "watermark", ev.Receipt.Watermark, int64(1458668856253))
			if !reflect.DeepEqual(ev.Receipt.MIDs, []string{"m_Q7w", "m_AbC1"}) {
				t.Errorf("mids = %v", ev.Receipt.MIDs)
			}
		}}}},
		{"delivery_no_mids.json", "page", []string{page}, []wantEvent{{baton.KindDelivery, page, psid, s, 0, 0, 1458668856463, func(t *testing.T, ev *baton.Event) {
			eq(t, "watermark", ev.Receipt.Watermark, int64(1458668856254))
			eq(t, "mids", len(ev.Receipt.MIDs), 0)
		}}}},
		{"reaction.json", "page", []string{page}, []wantEvent{{baton.KindReaction, page, psid, m, 0, 0, 1458668856500, func(t *testing.T, ev *baton.Event) {
			eq(t, "reaction", *ev.Reaction, baton.EventReaction{MID: "m_Q7w", Reaction: "love", Emoji: "❤️", Action: "react"})
		}}}},
		{"unreact_minimal.json", "page", []string{page}, []wantEvent{{baton.KindReaction, page, psid, m, 0, 0, 1458668856600, func(t *testing.T, ev *baton.Event) {
			eq(t, "reaction", *ev.Reaction, baton.EventReaction{MID: "m_Q7w", Action: "unreact"})
		}}}},
		{"referral.json", "page", []string{page}, []wantEvent{{baton.KindReferral, page, psid, m, 0, 0, 1458668856700, func(t *testing.T, ev *baton.Event) {
			if !strings.HasPrefix(ev.DedupeKey, "raw:") {
				t.Errorf("dedupe key %q: want the raw hash", ev.DedupeKey)
			}
		}}}},
		{"optin.json", "page", []string{page}, []wantEvent{{baton.KindOptin, page, psid, m, 0, 0, 1458668856800, nil}}},
		{"optin_plugin_no_sender.json", "page", []string{page}, []wantEvent{{baton.KindOptin, page, "", m, 0, 0, 1458668856900, nil}}},
		{"user_ref_sender.json", "page", []string{page}, []wantEvent{{baton.KindMessage, page, "", m, 0, 0, 1458668857000, func(t *testing.T, ev *baton.Event) {
			eq(t, "user ref", ev.UserRef, "guest_abc")
			eq(t, "mid", msg(ev).MID, "m_Guest1")
		}}}},
		{"pass_numbers.json", "page", []string{page}, []wantEvent{{baton.KindPass, page, psid, m, 0, 0, 1458692752478, func(t *testing.T, ev *baton.Event) {
			eq(t, "handover", *hand(ev), baton.EventHandover{PreviousOwner: bot, NewOwner: batn, Metadata: `{"reason":"asked_for_human","team":"billing"}`})
		}}}},
		{"pass_strings.json", "page", []string{page}, []wantEvent{{baton.KindPass, page, psid, m, 0, 0, 1458692752478, func(t *testing.T, ev *baton.Event) {
			eq(t, "handover", *hand(ev), baton.EventHandover{PreviousOwner: bot, NewOwner: batn, Metadata: "seed 003 quotes the id"})
		}}}},
		{"pass_null_previous_no_metadata.json", "page", []string{page}, []wantEvent{{baton.KindPass, page, psid, m, 0, 0, 1458692752490, func(t *testing.T, ev *baton.Event) {
			eq(t, "handover", *hand(ev), baton.EventHandover{NewOwner: batn})
		}}}},
		{"pass_microsoft.json", "page", []string{page}, []wantEvent{{baton.KindPass, page, psid, m, 0, 0, 1458692752491, func(t *testing.T, ev *baton.Event) {
			eq(t, "handover", *hand(ev), baton.EventHandover{NewOwner: "1234567890", Metadata: "Pass thread control"})
		}}}},
		{"pass_page_inbox_done.json", "page", []string{page}, []wantEvent{{baton.KindPass, page, psid, m, 0, 0, 1458692752492, func(t *testing.T, ev *baton.Event) {
			eq(t, "handover", *hand(ev), baton.EventHandover{PreviousOwner: inbox, NewOwner: bot, Metadata: "Pass thread control from Page Inbox"})
		}}}},
		{"pass_metadata_null.json", "page", []string{page}, []wantEvent{{baton.KindPass, page, psid, m, 0, 0, 1458692752493, func(t *testing.T, ev *baton.Event) {
			eq(t, "handover", *hand(ev), baton.EventHandover{PreviousOwner: bot, NewOwner: batn})
		}}}},
		{"take.json", "page", []string{page}, []wantEvent{{baton.KindTake, page, psid, m, 0, 0, 1458692752500, func(t *testing.T, ev *baton.Event) {
			eq(t, "handover", *hand(ev), baton.EventHandover{PreviousOwner: batn, NewOwner: bot, Metadata: "agent idle for 30 min"})
		}}}},
		{"take_microsoft.json", "page", []string{page}, []wantEvent{{baton.KindTake, page, psid, m, 0, 0, 1458692752501, func(t *testing.T, ev *baton.Event) {
			eq(t, "handover", *hand(ev), baton.EventHandover{PreviousOwner: "1234567890", Metadata: "Take thread control"})
		}}}},
		{"request.json", "page", []string{page}, []wantEvent{{baton.KindRequest, page, psid, m, 0, 0, 1458692752502, func(t *testing.T, ev *baton.Event) {
			eq(t, "handover", *hand(ev), baton.EventHandover{RequestedOwner: batn, Metadata: `{"baton":1,"event":"request","reason":"VIP"}`})
		}}}},
		{"request_page_inbox_null_metadata.json", "page", []string{page}, []wantEvent{{baton.KindRequest, page, psid, m, 0, 0, 1458692752503, func(t *testing.T, ev *baton.Event) {
			eq(t, "handover", *hand(ev), baton.EventHandover{RequestedOwner: inbox})
		}}}},
		{"app_roles.json", "page", []string{page}, []wantEvent{{baton.KindAppRoles, page, "", m, 0, 0, 1458692752504, func(t *testing.T, ev *baton.Event) {
			if !reflect.DeepEqual(ev.AppRoles, map[string][]string{batn: {RoleSecondary}}) {
				t.Errorf("app roles = %v", ev.AppRoles)
			}
		}}}},
		// recipient.id is a PSID on one doc page: the thread key stays empty.
		{"app_roles_several.json", "page", []string{page}, []wantEvent{{baton.KindAppRoles, page, "", m, 0, 0, 1458692752505, func(t *testing.T, ev *baton.Event) {
			want := map[string][]string{bot: {RolePrimary}, batn: {RoleSecondary, "automation"}, inbox: {}, "99": {"automation"}}
			if !reflect.DeepEqual(ev.AppRoles, want) {
				t.Errorf("app roles = %v, want %v", ev.AppRoles, want)
			}
		}}}},
		{"batched_entries.json", "page", []string{page, page, "400500600"}, []wantEvent{
			{baton.KindMessage, page, psid, m, 0, 0, 1458692752600, func(t *testing.T, ev *baton.Event) { eq(t, "mid", msg(ev).MID, "m_B1") }},
			{baton.KindMessage, page, "700800901", m, 1, 0, 1458692752601, func(t *testing.T, ev *baton.Event) { eq(t, "mid", msg(ev).MID, "m_B2") }},
			{baton.KindMessage, page, "700800901", m, 1, 1, 1458692752602, func(t *testing.T, ev *baton.Event) { eq(t, "mid", msg(ev).MID, "m_B3") }},
			{baton.KindMessage, "400500600", "700800902", m, 2, 0, 1458692752603, func(t *testing.T, ev *baton.Event) { eq(t, "mid", msg(ev).MID, "m_B4") }},
		}},
		{"standby_several.json", "page", []string{page}, []wantEvent{
			{baton.KindMessage, page, psid, m, 0, 0, 1458692752700, nil},
			{baton.KindMessage, page, "700800903", s, 0, 0, 1458692752701, func(t *testing.T, ev *baton.Event) { eq(t, "mid", msg(ev).MID, "m_S1") }},
			{baton.KindMessage, page, "700800903", s, 0, 1, 1458692752702, func(t *testing.T, ev *baton.Event) { eq(t, "mid", msg(ev).MID, "m_S2") }},
		}},
		{"microsoft_payload_with_standby.json", "page", []string{"1234567890"}, []wantEvent{
			{baton.KindMessage, "1234567890", "9876543210", m, 0, 0, 1588872616878, nil},
			{baton.KindMessage, "1234567890", "9876543210", s, 0, 0, 1588872616879, nil},
			{baton.KindMessage, "1234567890", "9876543210", s, 0, 1, 1588872616880, nil},
		}},
		// Ids beyond 2^53 survive exactly: a float would turn
		// 9007199254740993 into ...992.
		{"big_ids.json", "page", []string{"12345678901234567890"}, []wantEvent{{baton.KindPass, "12345678901234567890", "9007199254740993", m, 0, 0, 1458692752800, func(t *testing.T, ev *baton.Event) {
			eq(t, "handover", *hand(ev), baton.EventHandover{PreviousOwner: "9007199254740995", NewOwner: "18446744073709551615"})
		}}}},
		{"fractional_timestamps.json", "page", []string{page}, []wantEvent{
			{baton.KindMessage, page, psid, m, 0, 0, 1492414608999, nil},
			{baton.KindMessage, page, psid, m, 0, 1, 1492414608999, nil},
			{baton.KindRead, page, psid, m, 0, 2, 1492414609000, func(t *testing.T, ev *baton.Event) {
				eq(t, "watermark", ev.Receipt.Watermark, int64(1492414608999))
			}},
		}},
		// Unknown kinds, and a known kind too broken to read, are kept as
		// unknown with their raw bytes.
		{"unknown_kinds.json", "page", []string{page}, []wantEvent{
			{baton.KindUnknown, page, psid, m, 0, 0, 1458692752900, nil},
			{baton.KindUnknown, page, "", m, 0, 1, 1458692752901, nil},
			{baton.KindUnknown, page, "", m, 0, 2, 0, nil},
		}},
		{"extra_keys.json", "page", []string{page, page}, []wantEvent{{baton.KindMessage, page, psid, m, 0, 0, 1458692753000, func(t *testing.T, ev *baton.Event) {
			eq(t, "mid", msg(ev).MID, "m_X1")
			eq(t, "text", msg(ev).Text, "extra")
		}}}},
		{"other_object.json", "instagram", []string{"17841400000000000"}, []wantEvent{{baton.KindMessage, "17841400000000000", "123", m, 0, 0, 1458692753100, nil}}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			body := readFixture(t, tt.file)
			d, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			eq(t, "object", d.Object, tt.object)
			if !reflect.DeepEqual(d.PageIDs, tt.pages) {
				t.Errorf("pages = %v, want %v", d.PageIDs, tt.pages)
			}
			if len(d.Events) != len(tt.events) {
				t.Fatalf("got %d events, want %d: %+v", len(d.Events), len(tt.events), d.Events)
			}
			for i, w := range tt.events {
				ev := &d.Events[i]
				eq(t, "kind", ev.Kind, w.kind)
				eq(t, "page", ev.PageID, w.page)
				eq(t, "psid", ev.PSID, w.psid)
				eq(t, "channel", ev.Channel, w.channel)
				eq(t, "entry", ev.Entry, w.entry)
				eq(t, "index", ev.Index, w.index)
				eq(t, "timestamp", ev.TimestampMS, w.ts)
				if ev.DedupeKey == "" || len(ev.DedupeKey) > 200 {
					t.Errorf("dedupe key %q", ev.DedupeKey)
				}
				checkRawLocates(t, body, ev)
				if w.check != nil {
					w.check(t, ev)
				}
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("fixture %s has no expectations", f)
		}
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(b, "\n")
}

// checkRawLocates asserts that ev.Raw is exactly the bytes found at
// (Entry, Channel, Index) of body: the event log stores only that
// location, so it must lead back to the event.
func checkRawLocates(t testing.TB, body []byte, ev *baton.Event) {
	t.Helper()
	var env struct {
		Entry []struct {
			Messaging []json.RawMessage `json:"messaging"`
			Standby   []json.RawMessage `json:"standby"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("re-decode a body Parse accepted: %v", err)
	}
	if ev.Entry < 0 || ev.Entry >= len(env.Entry) {
		t.Fatalf("event entry %d of %d entries", ev.Entry, len(env.Entry))
	}
	arr := env.Entry[ev.Entry].Messaging
	if ev.Channel == baton.ChannelStandby {
		arr = env.Entry[ev.Entry].Standby
	} else if ev.Channel != baton.ChannelMessaging {
		t.Fatalf("channel %q", ev.Channel)
	}
	if ev.Index < 0 || ev.Index >= len(arr) {
		t.Fatalf("event index %d of %d in %s", ev.Index, len(arr), ev.Channel)
	}
	if !bytes.Equal(arr[ev.Index], ev.Raw) {
		t.Errorf("raw %s is not the event at entry %d %s[%d]: %s", ev.Raw, ev.Entry, ev.Channel, ev.Index, arr[ev.Index])
	}
}

// Bodies that are not a usable envelope fail with ErrMalformed; the
// ingester keeps them by hash.
func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"not json", "not json at all"},
		{"truncated", `{"object":"page","entry":[{"id":"1","messaging":[{"sender":`},
		{"array", `[{"object":"page"}]`},
		{"entry not array", `{"object":"page","entry":{"id":"1"}}`},
		{"entry id object", `{"object":"page","entry":[{"id":{"x":1}}]}`},
		{"entry id fraction", `{"object":"page","entry":[{"id":1.5}]}`},
		{"messaging not array", `{"object":"page","entry":[{"id":"1","messaging":{"a":1}}]}`},
		{"nul escape", `{"object":"page","entry":[{"id":"1","messaging":[{"message":{"mid":"m","text":"a\u0000b"}}]}]}`},
		{"invalid utf-8", "{\"object\":\"page\",\"entry\":[{\"id\":\"1\xff\"}]}"},
		{"trailing garbage", `{"object":"page","entry":[]} x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", d, err)
			}
		})
	}
}

// Envelopes with nothing to process still parse: an unusual shape is not
// a reason to make Meta retry.
func TestParseEmptyShapes(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		object string
		pages  int
		events int
	}{
		{"no entry", `{"object":"page"}`, "page", 0, 0},
		{"null entry", `{"object":"page","entry":null}`, "page", 0, 0},
		{"empty entry", `{"object":"page","entry":[]}`, "page", 0, 0},
		{"entry with neither array", `{"object":"page","entry":[{"id":"1","time":2}]}`, "page", 1, 0},
		{"empty arrays", `{"object":"page","entry":[{"id":"1","messaging":[],"standby":[]}]}`, "page", 1, 0},
		{"null element", `{"object":"page","entry":[{"id":"1","messaging":[null]}]}`, "page", 1, 1},
		{"scalar element", `{"object":"page","entry":[{"id":"1","standby":[42]}]}`, "page", 1, 1},
		{"user object", `{"object":"user","entry":[{"id":"1","changes":[{"field":"x"}]}]}`, "user", 1, 0},
		{"json null", `null`, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			eq(t, "object", d.Object, tt.object)
			eq(t, "pages", len(d.PageIDs), tt.pages)
			eq(t, "events", len(d.Events), tt.events)
			for i := range d.Events {
				eq(t, "kind", d.Events[i].Kind, baton.KindUnknown)
			}
		})
	}
}

// The kind is the first key present in PROTOCOL.md §5's order, whatever
// the order of the keys in the object.
func TestParseKindPrecedence(t *testing.T) {
	tests := []struct {
		name  string
		event string
		want  baton.EventKind
	}{
		{"message before postback", `{"postback":{"title":"t"},"message":{"mid":"m"}}`, baton.KindMessage},
		{"echo flag", `{"message":{"mid":"m","is_echo":true}}`, baton.KindEcho},
		{"is_echo false", `{"message":{"mid":"m","is_echo":false}}`, baton.KindMessage},
		{"postback before read", `{"read":{"watermark":1},"postback":{"title":"t"}}`, baton.KindPostback},
		{"read before delivery", `{"delivery":{"watermark":1},"read":{"watermark":1}}`, baton.KindRead},
		{"delivery before reaction", `{"reaction":{"mid":"m"},"delivery":{"watermark":1}}`, baton.KindDelivery},
		{"reaction before referral", `{"referral":{"ref":"r"},"reaction":{"mid":"m"}}`, baton.KindReaction},
		{"referral before optin", `{"optin":{"ref":"r"},"referral":{"ref":"r"}}`, baton.KindReferral},
		{"optin before pass", `{"pass_thread_control":{"new_owner_app_id":1},"optin":{"ref":"r"}}`, baton.KindOptin},
		{"pass before take", `{"take_thread_control":{},"pass_thread_control":{"new_owner_app_id":1}}`, baton.KindPass},
		{"take before request", `{"request_thread_control":{},"take_thread_control":{}}`, baton.KindTake},
		{"request before app_roles", `{"app_roles":{},"request_thread_control":{}}`, baton.KindRequest},
		{"empty app_roles", `{"app_roles":{}}`, baton.KindAppRoles},
		{"null kinds are absent", `{"message":null,"postback":null,"referral":null,"app_roles":null}`, baton.KindUnknown},
		{"unknown", `{"message_edit":{"mid":"m"}}`, baton.KindUnknown},
		{"known kind, wrong type", `{"message":"hello"}`, baton.KindUnknown},
		{"bad id type", `{"sender":{"id":true},"message":{"mid":"m"}}`, baton.KindUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(`{"object":"page","entry":[{"id":"1","messaging":[` + tt.event + `]}]}`))
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "kind", d.Events[0].Kind, tt.want)
		})
	}
}

// Ids are exact decimal text whether sent as numbers or strings
// (PROTOCOL.md §1).
func TestIDUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{`"100200300"`, "100200300", false},
		{`100200300`, "100200300", false},
		{`9007199254740993`, "9007199254740993", false},
		{`"9007199254740993"`, "9007199254740993", false},
		{`18446744073709551616123`, "18446744073709551616123", false},
		{`" 42 "`, "42", false},
		{`1500000001.0`, "1500000001", false},
		{`1.5e9`, "1500000000", false},
		{`null`, "", false},
		{`""`, "", false},
		{`1.5`, "", true},
		{`true`, "", true},
		{`{}`, "", true},
		{`[1]`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var id ID
			err := json.Unmarshal([]byte(tt.in), &id)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && id != tt.want {
				t.Errorf("id = %q, want %q", id, tt.want)
			}
		})
	}
}

// Times are epoch milliseconds from numbers, fractions, exponents or digit
// strings, rounded to the millisecond (PROTOCOL.md §1).
func TestMillisUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    Millis
		wantErr bool
	}{
		{`1458692752478`, Millis{1458692752478, true}, false},
		{`"1458692752478"`, Millis{1458692752478, true}, false},
		{`1492414608999.0`, Millis{1492414608999, true}, false},
		{`1492414608999.5`, Millis{1492414609000, true}, false},
		{`1492414608999.4`, Millis{1492414608999, true}, false},
		{`1.492414608999e12`, Millis{1492414608999, true}, false},
		{`"1492414608999.0"`, Millis{1492414608999, true}, false},
		{`0`, Millis{0, true}, false},
		{`null`, Millis{}, false},
		{`""`, Millis{}, false},
		{`"soon"`, Millis{}, true},
		{`1e300`, Millis{}, true},
		{`true`, Millis{}, true},
		{`{}`, Millis{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var m Millis
			err := json.Unmarshal([]byte(tt.in), &m)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && m != tt.want {
				t.Errorf("millis = %+v, want %+v", m, tt.want)
			}
		})
	}
	var ev struct {
		T Millis `json:"t"`
	}
	if err := json.Unmarshal([]byte(`{}`), &ev); err != nil || ev.T.Set {
		t.Errorf("missing time = %+v, %v; want unset", ev.T, err)
	}
}

func keyOf(t *testing.T, event string) string {
	t.Helper()
	d, err := Parse([]byte(`{"object":"page","entry":[{"id":"100200300","messaging":[` + event + `]}]}`))
	if err != nil || len(d.Events) != 1 {
		t.Fatalf("Parse(%s) = %+v, %v", event, d, err)
	}
	return d.Events[0].DedupeKey
}

// Dedupe keys (PROTOCOL.md §4.5): two copies of one event share a key
// whatever the encoding; two different events never do.
func TestDedupeKeys(t *testing.T) {
	const who = `"sender":{"id":"7"},"recipient":{"id":"100200300"}`
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"message by mid, other text", `{` + who + `,"timestamp":1,"message":{"mid":"m_1","text":"a"}}`,
			`{` + who + `,"timestamp":2,"message":{"mid":"m_1","text":"b"}}`, true},
		{"messages with other mids", `{` + who + `,"timestamp":1,"message":{"mid":"m_1"}}`,
			`{` + who + `,"timestamp":1,"message":{"mid":"m_2"}}`, false},
		{"echo by mid, app id as number or string", `{"sender":{"id":"100200300"},"recipient":{"id":"7"},"timestamp":1,"message":{"mid":"m_1","is_echo":true,"app_id":1}}`,
			`{"sender":{"id":"100200300"},"recipient":{"id":"7"},"timestamp":1,"message":{"mid":"m_1","is_echo":true,"app_id":"1"}}`, true},
		{"postback by mid", `{` + who + `,"timestamp":1,"postback":{"mid":"m_p","title":"A","payload":"X"}}`,
			`{` + who + `,"timestamp":5,"postback":{"mid":"m_p","title":"A"}}`, true},
		{"postback without mid, string time", `{` + who + `,"timestamp":1,"postback":{"title":"A","payload":"X"}}`,
			`{` + who + `,"timestamp":"1","postback":{"title":"A","payload":"X"}}`, true},
		{"postback without mid, other payload", `{` + who + `,"timestamp":1,"postback":{"title":"A","payload":"X"}}`,
			`{` + who + `,"timestamp":1,"postback":{"title":"A","payload":"Y"}}`, false},
		{"postback fields cannot run together", `{` + who + `,"timestamp":1,"postback":{"title":"A|1:B","payload":""}}`,
			`{` + who + `,"timestamp":1,"postback":{"title":"A","payload":"B"}}`, false},
		{"read by watermark", `{` + who + `,"timestamp":1,"read":{"watermark":10}}`,
			`{` + who + `,"timestamp":2,"read":{"watermark":"10"}}`, true},
		{"reads of other people", `{` + who + `,"timestamp":1,"read":{"watermark":10}}`,
			`{"sender":{"id":"8"},"recipient":{"id":"100200300"},"timestamp":1,"read":{"watermark":10}}`, false},
		{"delivery mids in any order", `{` + who + `,"delivery":{"mids":["b","a"],"watermark":10}}`,
			`{` + who + `,"delivery":{"mids":["a","b"],"watermark":10}}`, true},
		{"delivery other mids", `{` + who + `,"delivery":{"mids":["a"],"watermark":10}}`,
			`{` + who + `,"delivery":{"mids":["a","b"],"watermark":10}}`, false},
		{"read and delivery differ", `{` + who + `,"read":{"watermark":10}}`,
			`{` + who + `,"delivery":{"watermark":10}}`, false},
		{"react then unreact differ", `{` + who + `,"timestamp":1,"reaction":{"mid":"m","action":"react","reaction":"love"}}`,
			`{` + who + `,"timestamp":1,"reaction":{"mid":"m","action":"unreact"}}`, false},
		{"pass with numeric or string ids", `{` + who + `,"timestamp":1,"pass_thread_control":{"previous_owner_app_id":1,"new_owner_app_id":2,"metadata":"a"}}`,
			`{` + who + `,"timestamp":1,"pass_thread_control":{"previous_owner_app_id":"1","new_owner_app_id":"2","metadata":"b"}}`, true},
		{"pass and take differ", `{` + who + `,"timestamp":1,"pass_thread_control":{"previous_owner_app_id":1,"new_owner_app_id":2}}`,
			`{` + who + `,"timestamp":1,"take_thread_control":{"previous_owner_app_id":1,"new_owner_app_id":2}}`, false},
		{"passes at other times", `{` + who + `,"timestamp":1,"pass_thread_control":{"new_owner_app_id":2}}`,
			`{` + who + `,"timestamp":2,"pass_thread_control":{"new_owner_app_id":2}}`, false},
		{"app_roles canonical", `{"recipient":{"id":"1"},"timestamp":1,"app_roles":{"1":["a","b"],"2":["c"]}}`,
			`{"recipient":{"id":"1"},"timestamp":1,"app_roles":{"2":["c"],"1":["b","a"]}}`, true},
		{"app_roles other roles", `{"recipient":{"id":"1"},"timestamp":1,"app_roles":{"1":["a"]}}`,
			`{"recipient":{"id":"1"},"timestamp":1,"app_roles":{"1":["b"]}}`, false},
		{"referral by raw bytes", `{` + who + `,"timestamp":1,"referral":{"ref":"a"}}`,
			`{` + who + `,"timestamp":1,"referral":{"ref":"a"}}`, true},
		{"referral other bytes", `{` + who + `,"timestamp":1,"referral":{"ref":"a"}}`,
			`{` + who + `,"timestamp":1,"referral":{"ref":"b"}}`, false},
		{"message without mid by raw bytes", `{` + who + `,"timestamp":1,"message":{"text":"a"}}`,
			`{` + who + `,"timestamp":1,"message":{"text":"b"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := keyOf(t, tt.a), keyOf(t, tt.b)
			if (a == b) != tt.same {
				t.Errorf("keys %q and %q: same = %v, want %v", a, b, a == b, tt.same)
			}
		})
	}
}

// A key past 200 bytes (a postback with a long payload) is replaced by its
// SHA-256, and two long keys stay distinct.
func TestDedupeKeyBounded(t *testing.T) {
	long := strings.Repeat("x", 500)
	k1 := keyOf(t, `{"sender":{"id":"7"},"timestamp":1,"postback":{"title":"A","payload":"`+long+`1"}}`)
	k2 := keyOf(t, `{"sender":{"id":"7"},"timestamp":1,"postback":{"title":"A","payload":"`+long+`2"}}`)
	for _, k := range []string{k1, k2} {
		if !strings.HasPrefix(k, "h:") || len(k) != 2+64 {
			t.Errorf("key %q: want h: and 64 hex digits", k)
		}
	}
	if k1 == k2 {
		t.Error("distinct long keys collide")
	}
	mid := strings.Repeat("m", 300)
	if k := keyOf(t, `{"sender":{"id":"7"},"timestamp":1,"message":{"mid":"`+mid+`"}}`); !strings.HasPrefix(k, "h:") {
		t.Errorf("long mid key %q not hashed", k)
	}
	short := keyOf(t, `{"sender":{"id":"7"},"timestamp":1,"message":{"mid":"m_1"}}`)
	eq(t, "short key", short, "mid:m_1")
}

// CheckStorable refuses what PostgreSQL text cannot hold, and nothing else.
func TestCheckStorable(t *testing.T) {
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"ascii", `{"a":"b"}`, true},
		{"escaped unicode", `{"a":"\u00e4\ud83d\ude00"}`, true},
		{"raw utf-8", `{"a":"äö😀"}`, true},
		{"nul escape", `{"a":"\u0000"}`, false},
		{"invalid utf-8", "{\"a\":\"\xc3\x28\"}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckStorable([]byte(tt.body))
			if (err == nil) != tt.ok {
				t.Fatalf("CheckStorable = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}
