package apiwebhook_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/apiwebhook"
	"github.com/baton-chat/baton/internal/baton"
)

const (
	batonApp = "1001"
	botApp   = "2002"
)

func TestDerive(t *testing.T) {
	page := &baton.Page{PageID: "p1", BatonAppID: batonApp, PrimaryAppID: botApp}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	assignee := int64(7)
	conv := &baton.Conversation{ID: 42, PageID: "p1", PSID: "psid1", FirstName: "Maria", LastName: "Garcia",
		Status: baton.StatusOpen, OwnerAppID: batonApp, AssignedUserID: &assignee}
	ana := &baton.APIEventUser{ID: 7, Name: "Ana", Email: "ana@example.test"}
	actor := int64(3)
	ho := func(kind, from, to, md string) *baton.APISourceRow {
		return &baton.APISourceRow{Source: baton.APISourceHandovers, At: at, Conversation: conv, Assignee: ana,
			Handover: &baton.Handover{ID: 5, ConversationID: 42, Kind: kind, FromAppID: from, ToAppID: to, Metadata: md, TimestampMS: 99, ActorUserID: &actor}}
	}
	audit := func(action, detail string, c *baton.Conversation) *baton.APISourceRow {
		return &baton.APISourceRow{Source: baton.APISourceAudit, At: at, Conversation: c,
			Audit: &baton.AuditRecord{ID: 9, At: at, ActorID: &actor, ActorName: "Sam", Action: action, Subject: "conversation:42", Detail: detail}}
	}
	doneMD := `{"v":1,"outcome":"resolved","note":"refund <sent>","tags":["billing"],"conversation_id":"42","handled_seconds":60}`
	cases := []struct {
		name string
		row  *baton.APISourceRow
		// want is the event's type and data as JSON, "" for no event.
		typ, id, data string
	}{
		{"pass to Baton", ho("pass", botApp, batonApp, `{"reason":"asked for a human"}`), baton.APIEventHandedOver, "ho_5",
			`{"from_app_id":"2002","metadata":"{\"reason\":\"asked for a human\"}","metadata_json":{"reason":"asked for a human"},"timestamp_ms":99}`},
		{"pass with text metadata", ho("pass", botApp, batonApp, "human please"), baton.APIEventHandedOver, "ho_5",
			`{"from_app_id":"2002","metadata":"human please","metadata_json":null,"timestamp_ms":99}`},
		{"pass among other apps", ho("pass", botApp, baton.PageInboxAppID, ""), "", "", ""},
		{"stale pass", ho("pass_stale", botApp, batonApp, ""), "", "", ""},
		{"bot takes from Baton", ho("take", batonApp, botApp, "timeout"), baton.APIEventTakenBack, "ho_5",
			`{"by_app_id":"2002","metadata":"timeout","timestamp_ms":99}`},
		{"take while the bot owned it", ho("take", baton.PageInboxAppID, botApp, ""), "", "", ""},
		{"done", ho("done", batonApp, botApp, doneMD), baton.APIEventDone, "ho_5",
			`{"metadata":` + jsonString(doneMD) + `,"metadata_json":` + doneMD + `,"note":"refund <sent>","outcome":"resolved","reason":"done","tags":["billing"],"timestamp_ms":99,"to_app_id":"2002","user_id":3}`},
		{"idle return", ho("idle_return", batonApp, botApp, `{"v":1,"outcome":"idle"}`), baton.APIEventDone, "ho_5",
			`{"metadata":"{\"v\":1,\"outcome\":\"idle\"}","metadata_json":{"v":1,"outcome":"idle"},"note":"","outcome":"idle","reason":"idle","tags":null,"timestamp_ms":99,"to_app_id":"2002","user_id":3}`},
		{"another app requests control", ho("request", "", baton.PageInboxAppID, "please"), baton.APIEventControlRequested, "ho_5",
			`{"app_id":"263902037430900","metadata":"please","requested_by":"app","timestamp_ms":99}`},
		{"request sent by Baton (the audit line tells)", ho("request_sent", botApp, "", ""), "", "", ""},
		{"message", &baton.APISourceRow{Source: baton.APISourceMessages, At: at, Conversation: conv, Assignee: ana,
			Message: &baton.Message{ID: 11, MID: "m.1", Author: baton.AuthorUser, Kind: "message", Text: `<script>alert("x")</script> & co`, Part: baton.PartLive, TimestampMS: 98}},
			baton.APIEventMessageCreated, "msg_11",
			`{"message":{"app_id":"","author":"user","id":11,"kind":"message","mid":"m.1","part":"live","quick_reply":"","text":"<script>alert(\"x\")</script> & co","timestamp_ms":98}}`},
		{"assign", audit("conversation.assign", `{"from": null, "to": 7, "via": "api"}`, conv), baton.APIEventAssigned, "audit_9",
			`{"action":"assign","by":{"id":3,"name":"Sam","email":""},"from_user_id":null,"to_user_id":7,"via":"api"}`},
		{"unassign", audit("conversation.unassign", `{"from": 7}`, conv), baton.APIEventAssigned, "audit_9",
			`{"action":"unassign","by":{"id":3,"name":"Sam","email":""},"from_user_id":7,"to_user_id":null,"via":""}`},
		{"tag", audit("tag.add", `{"tag": "vip"}`, conv), baton.APIEventTagged, "audit_9",
			`{"action":"added","by":{"id":3,"name":"Sam","email":""},"tag":"vip","via":""}`},
		{"untag", audit("tag.remove", `{"tag": "vip", "via": "api"}`, conv), baton.APIEventTagged, "audit_9",
			`{"action":"removed","by":{"id":3,"name":"Sam","email":""},"tag":"vip","via":"api"}`},
		{"request control", audit("request_control", `{"reason": "VIP", "via": "console"}`, conv), baton.APIEventControlRequested, "audit_9",
			`{"by":{"id":3,"name":"Sam","email":""},"reason":"VIP","requested_by":"agent","via":"console"}`},
		{"note", audit("note.add", `{"note_id": 1}`, conv), "", "", ""},
		{"user change", audit("user.create", `{}`, nil), "", "", ""},
	}
	for _, c := range cases {
		evs := apiwebhook.Derive(page, []*baton.APISourceRow{c.row})
		if c.typ == "" {
			if len(evs) != 0 {
				t.Errorf("%s: got %+v, want no event", c.name, evs[0])
			}
			continue
		}
		if len(evs) != 1 {
			t.Errorf("%s: %d events", c.name, len(evs))
			continue
		}
		ev := evs[0]
		if ev.Type != c.typ || ev.ID != c.id || ev.V != 1 || !ev.At.Equal(at) || ev.At.Location() != time.UTC {
			t.Errorf("%s: event %s %s v%d at %s", c.name, ev.Type, ev.ID, ev.V, ev.At)
		}
		body, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Data         json.RawMessage             `json:"data"`
			Conversation *baton.APIEventConversation `json:"conversation"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v: %s", c.name, err, body)
		}
		if canon(t, got.Data) != canon(t, json.RawMessage(c.data)) {
			t.Errorf("%s: data\n got %s\nwant %s", c.name, canon(t, got.Data), canon(t, json.RawMessage(c.data)))
		}
		want := baton.APIEventConversation{ID: 42, PageID: "p1", PSID: "psid1", Name: "Maria Garcia", Status: "open",
			Owner: "baton", OwnerAppID: batonApp, AssignedUserID: &assignee}
		if gc := got.Conversation; gc == nil || gc.ID != want.ID || gc.Name != want.Name || gc.Owner != want.Owner ||
			gc.PSID != want.PSID || gc.AssignedUserID == nil || *gc.AssignedUserID != 7 || (c.row.Assignee != nil && (gc.Assignee == nil || gc.Assignee.Email != "ana@example.test")) {
			t.Errorf("%s: conversation %+v", c.name, gc)
		}
		if strings.Contains(string(body), `\u003c`) {
			t.Errorf("%s: HTML-escaped body %s", c.name, body)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// canon re-encodes JSON with sorted keys for comparison.
func canon(t *testing.T, b json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}
