// Package conversation holds Baton's rules for threads: the ownership state
// machine driven by handover events, the standby history, the messaging
// window, Done and request control. The rules are pure functions over
// domain values so that they can be table-tested; storage is reached only
// through the interfaces of package baton.
package conversation

import (
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

// Effects are what applying one event asks storage to write besides the
// conversation itself.
type Effects struct {
	Message  *baton.Message
	Handover *baton.Handover
	// Reaction sets the reaction shown on the message with this mid.
	Reaction *Reaction
	// PageChanged: the page's learned ids or role changed.
	PageChanged bool
	// Changed: the conversation row must be saved.
	Changed bool
}

// Reaction is a person's reaction to a message, "" when removed.
type Reaction struct {
	MID      string
	Reaction string
}

// ApplyPageEvent applies an event that concerns the Page rather than one
// thread (app_roles): Baton's role and the Primary's id (PROTOCOL.md §5.8,
// §13.3).
func ApplyPageEvent(p *baton.Page, ev *baton.Event) bool {
	if ev.Kind != baton.KindAppRoles {
		return false
	}
	changed := false
	for app, roles := range ev.AppRoles {
		for _, r := range roles {
			if r == "primary_receiver" && p.PrimaryAppID != app && app != p.BatonAppID && !p.PrimaryPinned {
				p.PrimaryAppID, changed = app, true
			}
		}
		if app == p.BatonAppID {
			role := ""
			for _, r := range roles {
				if r == "primary_receiver" || r == "secondary_receiver" {
					role = r
				}
			}
			if p.BatonRole != role {
				p.BatonRole, changed = role, true
			}
		}
	}
	return changed
}

// Apply applies one thread event to c (owned by page p) at time now and
// returns what else to store. Events must be fresh (deduplicated before);
// within a conversation they may come in any order: ownership follows the
// handover events' timestamps, and watermarks and clocks only move forward.
func Apply(p *baton.Page, c *baton.Conversation, ev *baton.Event, now time.Time) Effects {
	var fx Effects
	switch ev.Kind {
	case baton.KindMessage, baton.KindPostback:
		fx.Changed = true
		// A user event older than the last handover applied came late
		// (PROTOCOL.md §4.5): it says nothing of today's owner, and if it
		// came on standby it is the bot's history, not the live exchange.
		late := ev.TimestampMS < c.OwnerTS
		if !late {
			checkChannel(p, c, ev)
		}
		m := &baton.Message{
			ConversationID: c.ID, Author: baton.AuthorUser, Kind: "message",
			TimestampMS: ev.TimestampMS, Part: partOf(c),
		}
		if late && ev.Channel == baton.ChannelStandby {
			m.Part = baton.PartBot
		}
		if ev.Kind == baton.KindMessage {
			m.MID, m.Text, m.Attachments, m.QuickReply = ev.Message.MID, ev.Message.Text, ev.Message.Attachments, ev.Message.QuickReply
		} else {
			m.MID, m.Text, m.Kind, m.QuickReply = ev.Postback.MID, ev.Postback.Title, "postback", ev.Postback.Payload
			if m.MID == "" {
				m.MID = "postback:" + ev.DedupeKey
			}
		}
		if m.MID == "" {
			m.MID = "event:" + ev.DedupeKey
		}
		fx.Message = m
		c.LastUserEventMS = max(c.LastUserEventMS, ev.TimestampMS)
		touchLast(c, m)
		if m.Part == baton.PartLive {
			c.Unread++
		}
	case baton.KindEcho:
		fx.Changed = true
		m := &baton.Message{
			ConversationID: c.ID, MID: ev.Message.MID, AppID: ev.Message.AppID, Kind: "message",
			Text: ev.Message.Text, Attachments: ev.Message.Attachments, TimestampMS: ev.TimestampMS,
			Part: partOf(c), Author: authorOf(p, ev.Message.AppID),
		}
		if id, ok := OutboxIDFromMetadata(ev.Message.Metadata); ok && m.Author == baton.AuthorAgent {
			m.OutboxID = &id
		}
		if m.MID == "" {
			m.MID = "event:" + ev.DedupeKey
		}
		if m.Author == baton.AuthorAgent {
			m.Part = baton.PartLive
		}
		fx.Message = m
		touchLast(c, m)
	case baton.KindRead:
		if ev.Receipt.Watermark > c.ReadWatermark {
			c.ReadWatermark, fx.Changed = ev.Receipt.Watermark, true
		}
	case baton.KindDelivery:
		if ev.Receipt.Watermark > c.DeliveredWatermark {
			c.DeliveredWatermark, fx.Changed = ev.Receipt.Watermark, true
		}
	case baton.KindReaction:
		r := ev.Reaction.Reaction
		if ev.Reaction.Action == "unreact" {
			r = ""
		} else if ev.Reaction.Emoji != "" {
			r = ev.Reaction.Emoji
		}
		if ev.Reaction.MID != "" {
			fx.Reaction = &Reaction{MID: ev.Reaction.MID, Reaction: r}
		}
	case baton.KindReferral:
		c.LastUserEventMS, fx.Changed = max(c.LastUserEventMS, ev.TimestampMS), true
	case baton.KindPass, baton.KindTake:
		fx = applyOwnerChange(p, c, ev, now)
	case baton.KindRequest:
		fx.Handover = &baton.Handover{
			ConversationID: c.ID, Kind: "request", ToAppID: ev.Handover.RequestedOwner,
			Metadata: ev.Handover.Metadata, TimestampMS: ev.TimestampMS,
		}
	}
	return fx
}

// applyOwnerChange handles pass and take (PROTOCOL.md §5.5, §5.6, §16).
func applyOwnerChange(p *baton.Page, c *baton.Conversation, ev *baton.Event, now time.Time) Effects {
	var fx Effects
	h := ev.Handover
	newOwner := h.NewOwner
	if ev.Kind == baton.KindTake {
		if newOwner == "" {
			newOwner = p.PrimaryAppID
		}
		if h.NewOwner != "" && h.NewOwner != baton.PageInboxAppID && h.NewOwner != p.BatonAppID && p.PrimaryAppID == "" {
			p.PrimaryAppID, fx.PageChanged = h.NewOwner, true
		}
	}
	if ev.Kind == baton.KindPass && newOwner == p.BatonAppID && p.PrimaryAppID == "" &&
		h.PreviousOwner != "" && h.PreviousOwner != baton.PageInboxAppID && h.PreviousOwner != p.BatonAppID {
		p.PrimaryAppID, fx.PageChanged = h.PreviousOwner, true
	}
	fx.Handover = &baton.Handover{
		ConversationID: c.ID, Kind: "pass", FromAppID: h.PreviousOwner, ToAppID: newOwner,
		Metadata: h.Metadata, TimestampMS: ev.TimestampMS,
	}
	if ev.Kind == baton.KindTake {
		fx.Handover.Kind = "take"
	}
	if ev.TimestampMS < c.OwnerTS {
		// An older handover than the one applied: kept in the timeline,
		// but it changes nothing.
		fx.Handover.Kind += "_stale"
		return fx
	}
	fx.Changed = true
	c.OwnerTS = ev.TimestampMS
	c.OwnerAppID = newOwner
	c.OwnerUnsure = false
	if newOwner == p.BatonAppID && p.BatonAppID != "" {
		// A pending request is answered by this pass.
		c.RequestedAt = nil
		if c.Status != baton.StatusOpen {
			c.Status, c.CloseReason, c.ClosedAt = baton.StatusOpen, "", nil
			t := now
			c.OpenedAt = &t
			c.HandoverMetadata = h.Metadata
			c.Unread = 0
		}
		return fx
	}
	if c.Status == baton.StatusOpen {
		reason := baton.ClosePassed
		if ev.Kind == baton.KindTake {
			reason = baton.CloseTakenBack
		}
		t := now
		c.Status, c.CloseReason, c.ClosedAt, c.Closing = baton.StatusClosed, reason, &t, false
	}
	return fx
}

// checkChannel marks the owner unsure when a user event arrives on a
// channel that contradicts what Baton believes (PROTOCOL.md §16): on standby
// while Baton owns the thread, or on messaging while another app does.
func checkChannel(p *baton.Page, c *baton.Conversation, ev *baton.Event) {
	batonOwns := c.OwnerAppID != "" && c.OwnerAppID == p.BatonAppID
	switch {
	case ev.Channel == baton.ChannelStandby && batonOwns:
		c.OwnerUnsure = true
	case ev.Channel == baton.ChannelMessaging && !batonOwns && c.OwnerAppID != "":
		c.OwnerUnsure = true
	case ev.Channel == baton.ChannelStandby && c.OwnerAppID == "" && p.PrimaryAppID != "" && ev.TimestampMS >= c.OwnerTS:
		// An idle thread goes to the Primary on the person's message,
		// silently (PROTOCOL.md §7).
		c.OwnerAppID = p.PrimaryAppID
	}
}

func partOf(c *baton.Conversation) baton.Part {
	if c.Status == baton.StatusOpen {
		return baton.PartLive
	}
	return baton.PartBot
}

func touchLast(c *baton.Conversation, m *baton.Message) {
	if m.TimestampMS < c.LastMessageMS {
		return
	}
	c.LastMessageMS = m.TimestampMS
	c.LastMessageText = Preview(m)
}

// Preview is the one-line summary of a message for the inbox list.
func Preview(m *baton.Message) string {
	if m.Text != "" {
		r := []rune(m.Text)
		if len(r) > 140 {
			return string(r[:140]) + "…"
		}
		return m.Text
	}
	if len(m.Attachments) > 0 {
		return "[attachment]"
	}
	return ""
}

// authorOf classifies the app that sent an echo.
func authorOf(p *baton.Page, appID string) baton.Author {
	switch {
	case appID != "" && appID == p.BatonAppID:
		return baton.AuthorAgent
	case appID == baton.PageInboxAppID:
		return baton.AuthorPageInbox
	case appID != "" && appID == p.PrimaryAppID:
		return baton.AuthorBot
	}
	return baton.AuthorApp
}
