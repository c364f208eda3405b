package emulator

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/baton-chat/baton/internal/messenger"
)

// sendPageMessage records a page message by appID and routes its echo and
// delivery receipt (§5.2, §5.4, §6). It returns the mid, which is both the
// Send API's message_id and the echo's mid. Callers hold e.mu and have
// checked the owner and window rules.
func (e *Emulator) sendPageMessage(appID, psid string, req sendRequest) string {
	u := e.users[psid]
	t := e.threadFor(psid)
	now := e.now()
	mid := newMid()
	item := &chatItem{Mid: mid, AppID: appID, Text: req.text, Timestamp: now}
	echo := &wireMessage{IsEcho: true, AppID: e.appIDJSON(appID), Metadata: req.metadata, Mid: mid, Text: req.text}
	if req.attachment != nil {
		typ, _ := stringField(req.attachment, "type")
		payload, _ := req.attachment["payload"].(map[string]any)
		raw, err := json.Marshal(payload)
		if err != nil {
			raw = []byte("{}")
		}
		echo.Attachments = []wireAttachment{{Type: typ, Payload: raw}}
		if typ == "template" {
			if s, ok := stringField(payload, "text"); ok && item.Text == "" {
				item.Text = s
			}
			item.Buttons = templateButtons(payload)
		} else {
			u, _ := stringField(payload, "url")
			item.Attachments = []chatAttachment{{Type: typ, URL: u}}
		}
	}
	for _, q := range req.quickReplies {
		m := q.(map[string]any)
		raw, err := json.Marshal(m)
		if err == nil {
			echo.QuickReplies = append(echo.QuickReplies, raw)
		}
		title, _ := stringField(m, "title")
		payload, _ := stringField(m, "payload")
		if title != "" {
			item.QuickReplies = append(item.QuickReplies, chatQuickReply{Title: title, Payload: payload})
		}
	}
	u.log = append(u.log, item)
	u.typingApp, u.typingTill = "", time.Time{}

	ts := ms(now)
	e.route(t, fieldEchoes, scopeStandby, func(string) wireEvent {
		return wireEvent{
			Sender:    &wireID{ID: e.cfg.PageID},
			Recipient: &wireID{ID: psid},
			Timestamp: ts,
			Message:   echo,
		}
	})
	e.route(t, fieldDeliveries, scopeStandby, func(string) wireEvent {
		return wireEvent{
			Sender:    &wireID{ID: psid},
			Recipient: &wireID{ID: e.cfg.PageID},
			Delivery:  &wireDelivery{Mids: []string{mid}, Watermark: ts},
		}
	})
	return mid
}

// templateButtons lists the buttons of a button or generic template so that
// the chat page can offer them and postbacks can find their sender.
func templateButtons(payload map[string]any) []chatButton {
	var out []chatButton
	add := func(list any) {
		arr, _ := list.([]any)
		for _, b := range arr {
			m, ok := b.(map[string]any)
			if !ok {
				continue
			}
			typ, _ := stringField(m, "type")
			title, _ := stringField(m, "title")
			pl, _ := stringField(m, "payload")
			u, _ := stringField(m, "url")
			out = append(out, chatButton{Type: typ, Title: title, Payload: pl, URL: u})
		}
	}
	add(payload["buttons"])
	if els, ok := payload["elements"].([]any); ok {
		for _, el := range els {
			if m, ok := el.(map[string]any); ok {
				add(m["buttons"])
			}
		}
	}
	return out
}

// senderAction applies typing_on, typing_off or mark_seen (§8.2).
func (e *Emulator) senderAction(appID, psid, action string) {
	u := e.users[psid]
	switch action {
	case "typing_on":
		u.typingApp, u.typingTill = appID, e.now().Add(typingTimeout)
	case "typing_off":
		u.typingApp, u.typingTill = "", time.Time{}
	case "mark_seen":
		for _, it := range u.log {
			if it.FromUser {
				it.Seen = true
			}
		}
	}
}

// userMessage is the person sending a message (§5.1, §6, §7).
func (e *Emulator) userMessage(psid, text string, atts []chatAttachment, qrPayload string) string {
	u := e.users[psid]
	t := e.threadFor(psid)
	e.touchUser(t)
	now := e.now()
	mid := newMid()
	u.log = append(u.log, &chatItem{Mid: mid, FromUser: true, Text: text, Attachments: atts, Timestamp: now})
	msg := &wireMessage{Mid: mid, Text: text}
	if qrPayload != "" {
		msg.QuickReply = &wirePayload{Payload: qrPayload}
	}
	for _, a := range atts {
		raw, _ := json.Marshal(map[string]string{"url": a.URL})
		msg.Attachments = append(msg.Attachments, wireAttachment{Type: a.Type, Payload: raw})
	}
	ts := ms(now)
	e.route(t, fieldMessages, scopeStandby, func(string) wireEvent {
		ev := e.threadEvent(psid)
		ev.Timestamp = ts
		ev.Message = msg
		return ev
	})
	return mid
}

// userPostback is the person tapping a button (§5.3). The payload reaches
// only the app that sent the button; without a known sender the postback is
// routed like a user message [ED].
func (e *Emulator) userPostback(psid, title, payload string) string {
	u := e.users[psid]
	sender := ""
	for i := len(u.log) - 1; i >= 0 && sender == ""; i-- {
		for _, b := range u.log[i].Buttons {
			if !u.log[i].FromUser && b.Type == "postback" && b.Payload == payload {
				sender = u.log[i].AppID
				break
			}
		}
	}
	t := e.threadFor(psid)
	e.touchUser(t)
	mid := newMid()
	ts := ms(e.now())
	build := func(channel string) wireEvent {
		ev := e.threadEvent(psid)
		ev.Timestamp = ts
		pb := &wirePostback{Mid: mid, Title: title}
		if channel == chanMessaging {
			pl := payload
			pb.Payload = &pl
		}
		ev.Postback = pb
		return ev
	}
	if sender == "" || !e.hasRole(sender) {
		e.route(t, fieldPostbacks, scopeStandby, build)
		return mid
	}
	for _, id := range e.appOrder {
		a := e.apps[id]
		if !e.hasRole(id) || !a.deliverable() {
			continue
		}
		if id == sender {
			if a.subscribedTo(fieldPostbacks) {
				e.enqueue(a, chanMessaging, build(chanMessaging))
			}
		} else if a.subscribedTo(fieldStandby) {
			e.enqueue(a, chanStandby, build(chanStandby))
		}
	}
	return mid
}

// reactionEmoji maps Messenger's reaction names to the emoji sent with them.
var reactionEmoji = map[string]string{
	"smile": "\U0001f606", "angry": "\U0001f620", "sad": "\U0001f622", "wow": "\U0001f62e",
	"love": "\u2764\ufe0f", "like": "\U0001f44d", "dislike": "\U0001f44e",
}

// userReaction is the person reacting to (or unreacting from) a page
// message; only the owner hears it (§6). It does not refresh the window.
func (e *Emulator) userReaction(psid, mid, reaction, action string) {
	t := e.threadFor(psid)
	r := &wireReaction{Action: action, Mid: mid}
	if action == "react" {
		r.Reaction = reaction
		r.Emoji = reactionEmoji[reaction]
	}
	ts := ms(e.now())
	e.route(t, fieldReactions, scopeOwnerOnly, func(string) wireEvent {
		ev := e.threadEvent(psid)
		ev.Timestamp = ts
		ev.Reaction = r
		return ev
	})
}

// userReferral is the person re-entering the thread from an m.me link or an
// ad: it opens the window like a message and goes to the owner only (§6, §7).
func (e *Emulator) userReferral(psid, ref, source string) {
	t := e.threadFor(psid)
	e.touchUser(t)
	ts := ms(e.now())
	e.route(t, fieldReferrals, scopeOwnerOnly, func(string) wireEvent {
		ev := e.threadEvent(psid)
		ev.Timestamp = ts
		ev.Referral = &wireReferral{Ref: ref, Source: source, Type: "OPEN_THREAD"}
		return ev
	})
}

// userRead is the person reading the conversation (§5.4). It does not
// refresh the window (§11).
func (e *Emulator) userRead(psid string) int64 {
	u := e.users[psid]
	t := e.threadFor(psid)
	for _, it := range u.log {
		if !it.FromUser {
			it.Seen = true
		}
	}
	wm := ms(e.now())
	e.route(t, fieldReads, scopeStandby, func(string) wireEvent {
		ev := e.threadEvent(psid)
		ev.Read = &wireWatermark{Watermark: wm}
		return ev
	})
	return wm
}

// inboxDone is the Page Inbox's "Mark as Done": pass to the Primary (§12).
func (e *Emulator) inboxDone(psid string) *gErr {
	t := e.threadFor(psid)
	if t.Owner != messenger.PageInboxAppID {
		return invalidParam("the Page Inbox does not own this thread")
	}
	md := "Pass thread control from Page Inbox"
	return e.passThread(messenger.PageInboxAppID, psid, e.primary(), &md)
}

// inboxRequest is the Page Inbox's "Move to Inbox": a request to the
// Primary with no metadata (§12).
func (e *Emulator) inboxRequest(psid string) *gErr {
	t := e.threadFor(psid)
	if t.Owner == messenger.PageInboxAppID {
		return invalidParam("the Page Inbox already owns this thread")
	}
	if e.primary() == "" {
		return invalidParam("the Page has no Primary Receiver")
	}
	return e.requestThread(messenger.PageInboxAppID, psid, nil)
}

// inboxReply is a reply typed in the Page Inbox: an echo with the Inbox's
// app id; in routing-cr it also takes control (§12).
func (e *Emulator) inboxReply(psid, text string) (string, *gErr) {
	if !e.hasRole(messenger.PageInboxAppID) {
		return "", errNoRole
	}
	t := e.threadFor(psid)
	if e.cfg.Mode == ModeRoutingCR && t.Owner != messenger.PageInboxAppID {
		prev := t.Owner
		e.setOwner(t, messenger.PageInboxAppID)
		ev := e.threadEvent(psid)
		ev.Take = e.handoverBody("take", prev, messenger.PageInboxAppID, nil)
		e.sendHandover(e.handoverSubscribers(), ev)
	}
	return e.sendPageMessage(messenger.PageInboxAppID, psid, sendRequest{text: text}), nil
}

// sortedFields lists a field set in a stable order.
func sortedFields(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for f, on := range m {
		if on {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}
