package apiwebhook

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/baton-chat/baton/internal/baton"
)

// Derive turns source rows into events; rows that are not events (a
// handover among other apps, an audit line about a user) give none. p
// classifies owners; nil leaves them "unknown" and recognises no
// hand-over to Baton.
func Derive(p *baton.Page, rows []*baton.APISourceRow) []*baton.APIEvent {
	var out []*baton.APIEvent
	for _, r := range rows {
		if ev := derive(p, r); ev != nil {
			out = append(out, ev)
		}
	}
	return out
}

// Event id prefixes, one per source: the id is stable (the same row always
// gives the same id), which is what receivers deduplicate on.
const (
	idHandover = "ho_"
	idMessage  = "msg_"
	idAudit    = "audit_"
)

func derive(p *baton.Page, r *baton.APISourceRow) *baton.APIEvent {
	switch {
	case r.Handover != nil:
		return handoverEvent(p, r)
	case r.Message != nil:
		return messageEvent(p, r)
	case r.Audit != nil:
		return auditEvent(p, r)
	}
	return nil
}

func newEvent(p *baton.Page, r *baton.APISourceRow, id, typ string, data map[string]any) *baton.APIEvent {
	return &baton.APIEvent{V: baton.APIEventVersion, ID: id, Type: typ, At: r.At.UTC(),
		Conversation: conversationOf(p, r), Data: data}
}

func conversationOf(p *baton.Page, r *baton.APISourceRow) *baton.APIEventConversation {
	c := r.Conversation
	if c == nil {
		return nil
	}
	owner := string(baton.OwnerUnknown)
	if p != nil {
		owner = string(p.OwnerKindOf(c.OwnerAppID))
	}
	return &baton.APIEventConversation{ID: c.ID, PageID: c.PageID, PSID: c.PSID, Name: c.Name(), Status: string(c.Status),
		CloseReason: c.CloseReason, Owner: owner, OwnerAppID: c.OwnerAppID, AssignedUserID: c.AssignedUserID, Assignee: r.Assignee}
}

// metadataJSON is the metadata parsed when it is JSON, nil otherwise: the
// raw string always goes too, exactly as the other app sent it.
func metadataJSON(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return nil
	}
	return json.RawMessage(s)
}

func handoverEvent(p *baton.Page, r *baton.APISourceRow) *baton.APIEvent {
	h := r.Handover
	id := idHandover + strconv.FormatInt(h.ID, 10)
	batonApp := ""
	if p != nil {
		batonApp = p.BatonAppID
	}
	switch h.Kind {
	case "pass":
		if batonApp == "" || h.ToAppID != batonApp {
			return nil
		}
		return newEvent(p, r, id, baton.APIEventHandedOver, map[string]any{"from_app_id": h.FromAppID, "metadata": h.Metadata,
			"metadata_json": metadataJSON(h.Metadata), "timestamp_ms": h.TimestampMS})
	case "take":
		if batonApp == "" || h.FromAppID != batonApp {
			return nil
		}
		return newEvent(p, r, id, baton.APIEventTakenBack, map[string]any{"by_app_id": h.ToAppID, "metadata": h.Metadata,
			"timestamp_ms": h.TimestampMS})
	case "done", "idle_return":
		reason := "done"
		if h.Kind == "idle_return" {
			reason = "idle"
		}
		data := map[string]any{"reason": reason, "to_app_id": h.ToAppID, "metadata": h.Metadata,
			"metadata_json": metadataJSON(h.Metadata), "user_id": h.ActorUserID, "timestamp_ms": h.TimestampMS}
		var md struct {
			Outcome string   `json:"outcome"`
			Note    string   `json:"note"`
			Tags    []string `json:"tags"`
		}
		if json.Unmarshal([]byte(h.Metadata), &md) == nil {
			data["outcome"], data["note"], data["tags"] = md.Outcome, md.Note, md.Tags
		}
		return newEvent(p, r, id, baton.APIEventDone, data)
	case "request":
		return newEvent(p, r, id, baton.APIEventControlRequested, map[string]any{"requested_by": "app", "app_id": h.ToAppID,
			"metadata": h.Metadata, "timestamp_ms": h.TimestampMS})
	}
	return nil
}

func messageEvent(p *baton.Page, r *baton.APISourceRow) *baton.APIEvent {
	m := r.Message
	msg := map[string]any{"id": m.ID, "mid": m.MID, "author": string(m.Author), "app_id": m.AppID, "kind": m.Kind,
		"text": m.Text, "quick_reply": m.QuickReply, "part": string(m.Part), "timestamp_ms": m.TimestampMS}
	if len(m.Attachments) > 0 && json.Valid(m.Attachments) {
		msg["attachments"] = m.Attachments
	}
	return newEvent(p, r, idMessage+strconv.FormatInt(m.ID, 10), baton.APIEventMessageCreated, map[string]any{"message": msg})
}

// auditDetail is the part of an audit line's detail events use.
type auditDetail struct {
	From   *int64 `json:"from"`
	To     *int64 `json:"to"`
	Tag    string `json:"tag"`
	Reason string `json:"reason"`
	Via    string `json:"via"`
}

func auditEvent(p *baton.Page, r *baton.APISourceRow) *baton.APIEvent {
	a := r.Audit
	if r.Conversation == nil {
		return nil
	}
	var d auditDetail
	_ = json.Unmarshal([]byte(a.Detail), &d)
	id := idAudit + strconv.FormatInt(a.ID, 10)
	by := actor(a)
	switch a.Action {
	case "conversation.claim", "conversation.assign", "conversation.unassign", "conversation.auto_assign":
		return newEvent(p, r, id, baton.APIEventAssigned, map[string]any{"action": strings.TrimPrefix(a.Action, "conversation."),
			"from_user_id": d.From, "to_user_id": d.To, "by": by, "via": d.Via})
	case "tag.add", "tag.remove":
		action := "added"
		if a.Action == "tag.remove" {
			action = "removed"
		}
		return newEvent(p, r, id, baton.APIEventTagged, map[string]any{"action": action, "tag": d.Tag, "by": by, "via": d.Via})
	case "request_control":
		return newEvent(p, r, id, baton.APIEventControlRequested, map[string]any{"requested_by": "agent", "by": by,
			"reason": d.Reason, "via": d.Via})
	}
	return nil
}

// actor names who did it; nil for the system (auto-assign, timers).
func actor(a *baton.AuditRecord) *baton.APIEventUser {
	if a.ActorID == nil {
		return nil
	}
	return &baton.APIEventUser{ID: *a.ActorID, Name: a.ActorName}
}
