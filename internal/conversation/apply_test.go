package conversation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
)

// Ids of PROTOCOL.md §0.
const (
	pageID  = "100200300"
	psid    = "700800900"
	botApp  = "1500000001"
	batonID = "2500000002"
	otherID = "3500000003"
	inboxID = baton.PageInboxAppID
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func page() baton.Page {
	return baton.Page{PageID: pageID, BatonAppID: batonID, PrimaryAppID: botApp, BatonRole: "secondary_receiver"}
}

// Conversation starting points.
func botOwned(ts int64) baton.Conversation {
	return baton.Conversation{ID: 1, PageID: pageID, PSID: psid, Status: baton.StatusBot, OwnerAppID: botApp, OwnerTS: ts}
}

func open(ts int64) baton.Conversation {
	opened := now.Add(-time.Hour)
	return baton.Conversation{ID: 1, PageID: pageID, PSID: psid, Status: baton.StatusOpen, OwnerAppID: batonID, OwnerTS: ts,
		OpenedAt: &opened, HandoverMetadata: "first", Unread: 2}
}

func closed(ts int64) baton.Conversation {
	opened, done := now.Add(-2*time.Hour), now.Add(-time.Hour)
	return baton.Conversation{ID: 1, PageID: pageID, PSID: psid, Status: baton.StatusClosed, CloseReason: baton.CloseDone,
		OwnerAppID: botApp, OwnerTS: ts, OpenedAt: &opened, ClosedAt: &done, Unread: 0}
}

func idle() baton.Conversation {
	return baton.Conversation{ID: 1, PageID: pageID, PSID: psid, Status: baton.StatusBot}
}

// Events.
func ev(kind baton.EventKind, ch baton.Channel, ts int64) baton.Event {
	return baton.Event{PageID: pageID, PSID: psid, Kind: kind, Channel: ch, TimestampMS: ts, DedupeKey: string(kind) + ":" + string(ch)}
}

func userMsg(ch baton.Channel, ts int64, mid, text string) baton.Event {
	e := ev(baton.KindMessage, ch, ts)
	e.Message = &baton.EventMessage{MID: mid, Text: text}
	return e
}

func postback(ch baton.Channel, ts int64, mid, title, payload string) baton.Event {
	e := ev(baton.KindPostback, ch, ts)
	e.Postback = &baton.EventPostback{MID: mid, Title: title, Payload: payload}
	return e
}

func echo(ch baton.Channel, ts int64, mid, app, meta string) baton.Event {
	e := ev(baton.KindEcho, ch, ts)
	e.Message = &baton.EventMessage{MID: mid, Text: "echo " + mid, IsEcho: true, AppID: app, Metadata: meta}
	return e
}

func handover(kind baton.EventKind, ts int64, prev, next, meta string) baton.Event {
	e := ev(kind, baton.ChannelMessaging, ts)
	e.Handover = &baton.EventHandover{PreviousOwner: prev, NewOwner: next, Metadata: meta}
	return e
}

func pass(ts int64, prev, next, meta string) baton.Event {
	return handover(baton.KindPass, ts, prev, next, meta)
}

func take(ts int64, prev, next, meta string) baton.Event {
	return handover(baton.KindTake, ts, prev, next, meta)
}

func receipt(kind baton.EventKind, ts, watermark int64) baton.Event {
	e := ev(kind, baton.ChannelMessaging, ts)
	e.Receipt = &baton.EventReceipt{Watermark: watermark}
	return e
}

func reaction(ts int64, mid, r, emoji, action string) baton.Event {
	e := ev(baton.KindReaction, baton.ChannelMessaging, ts)
	e.Reaction = &baton.EventReaction{MID: mid, Reaction: r, Emoji: emoji, Action: action}
	return e
}

const (
	msgCh = baton.ChannelMessaging
	sbCh  = baton.ChannelStandby
)

// want is the conversation after the events, as far as the case cares:
// nil pointers and zero values of the *Set fields are not compared.
type want struct {
	status      baton.Status
	reason      *string
	owner       *string
	ownerTS     *int64
	unsure      *bool
	unread      *int
	meta        *string
	lastUser    *int64
	openedNow   *bool // OpenedAt == now
	closedNow   *bool // ClosedAt == now
	readWM      *int64
	deliveredWM *int64
}

func ptr[T any](v T) *T { return &v }

func (w want) check(t *testing.T, c *baton.Conversation) {
	t.Helper()
	if w.status != "" && c.Status != w.status {
		t.Errorf("status = %q, want %q", c.Status, w.status)
	}
	cmp(t, "close reason", c.CloseReason, w.reason)
	cmp(t, "owner", c.OwnerAppID, w.owner)
	cmp(t, "owner ts", c.OwnerTS, w.ownerTS)
	cmp(t, "owner unsure", c.OwnerUnsure, w.unsure)
	cmp(t, "unread", c.Unread, w.unread)
	cmp(t, "handover metadata", c.HandoverMetadata, w.meta)
	cmp(t, "last user event", c.LastUserEventMS, w.lastUser)
	cmp(t, "read watermark", c.ReadWatermark, w.readWM)
	cmp(t, "delivered watermark", c.DeliveredWatermark, w.deliveredWM)
	if w.openedNow != nil {
		got := c.OpenedAt != nil && c.OpenedAt.Equal(now)
		if got != *w.openedNow {
			t.Errorf("opened at %v; want now: %v", c.OpenedAt, *w.openedNow)
		}
	}
	if w.closedNow != nil {
		got := c.ClosedAt != nil && c.ClosedAt.Equal(now)
		if got != *w.closedNow {
			t.Errorf("closed at %v; want now: %v", c.ClosedAt, *w.closedNow)
		}
	}
	if c.Status != baton.StatusClosed && (c.ClosedAt != nil || c.CloseReason != "") {
		t.Errorf("%s conversation has close reason %q, closed at %v", c.Status, c.CloseReason, c.ClosedAt)
	}
}

func cmp[T comparable](t *testing.T, what string, got T, want *T) {
	t.Helper()
	if want != nil && got != *want {
		t.Errorf("%s = %v, want %v", what, got, *want)
	}
}

// wantFx is what the last event's Effects must hold.
type wantFx struct {
	handoverKind string // "" = no handover
	from, to     string
	changed      *bool
	msg          *wantMsg
	noMsg        bool
}

type wantMsg struct {
	author   baton.Author
	part     baton.Part
	mid      string
	kind     string
	outboxID int64 // 0 = none
}

func (w wantFx) check(t *testing.T, fx conversation.Effects) {
	t.Helper()
	switch {
	case w.handoverKind == "" && fx.Handover != nil:
		t.Errorf("unexpected handover %+v", fx.Handover)
	case w.handoverKind != "" && fx.Handover == nil:
		t.Errorf("no handover, want %q", w.handoverKind)
	case w.handoverKind != "":
		h := fx.Handover
		if h.Kind != w.handoverKind || h.FromAppID != w.from || h.ToAppID != w.to {
			t.Errorf("handover %s %s→%s, want %s %s→%s", h.Kind, h.FromAppID, h.ToAppID, w.handoverKind, w.from, w.to)
		}
	}
	cmp(t, "changed", fx.Changed, w.changed)
	if w.noMsg && fx.Message != nil {
		t.Errorf("unexpected message %+v", fx.Message)
	}
	if w.msg != nil {
		m := fx.Message
		if m == nil {
			t.Fatal("no message")
		}
		if m.Author != w.msg.author || m.Part != w.msg.part {
			t.Errorf("message by %q in part %q, want %q in %q", m.Author, m.Part, w.msg.author, w.msg.part)
		}
		if w.msg.mid != "" && m.MID != w.msg.mid {
			t.Errorf("mid = %q, want %q", m.MID, w.msg.mid)
		}
		if w.msg.kind != "" && m.Kind != w.msg.kind {
			t.Errorf("kind = %q, want %q", m.Kind, w.msg.kind)
		}
		switch {
		case w.msg.outboxID == 0 && m.OutboxID != nil:
			t.Errorf("outbox id %d, want none", *m.OutboxID)
		case w.msg.outboxID != 0 && (m.OutboxID == nil || *m.OutboxID != w.msg.outboxID):
			t.Errorf("outbox id %v, want %d", m.OutboxID, w.msg.outboxID)
		}
	}
}

// The rules of PROTOCOL.md §5.5, §5.6, §16 and §11 for one thread: each
// case applies its events in order and checks the conversation and the
// last event's effects.
func TestApply(t *testing.T) {
	tests := []struct {
		name   string
		page   func(*baton.Page)
		conv   baton.Conversation
		events []baton.Event
		want   want
		fx     wantFx
	}{
		// Ownership.
		{name: "pass to Baton opens with its metadata",
			conv:   botOwned(100),
			events: []baton.Event{pass(200, botApp, batonID, `{"reason":"asked_for_human"}`)},
			want:   want{status: baton.StatusOpen, owner: ptr(batonID), ownerTS: ptr(int64(200)), meta: ptr(`{"reason":"asked_for_human"}`), unread: ptr(0), openedNow: ptr(true)},
			fx:     wantFx{handoverKind: "pass", from: botApp, to: batonID, changed: ptr(true)}},
		{name: "pass to Baton reopens a closed conversation",
			conv:   closed(100),
			events: []baton.Event{pass(200, botApp, batonID, "again")},
			want:   want{status: baton.StatusOpen, reason: ptr(""), meta: ptr("again"), openedNow: ptr(true), closedNow: ptr(false)},
			fx:     wantFx{handoverKind: "pass", from: botApp, to: batonID}},
		{name: "pass to Baton of an idle thread (previous null)",
			conv:   idle(),
			events: []baton.Event{pass(200, "", batonID, "")},
			want:   want{status: baton.StatusOpen, owner: ptr(batonID), meta: ptr("")},
			fx:     wantFx{handoverKind: "pass", from: "", to: batonID}},
		{name: "a second pass to Baton keeps the open conversation as it is",
			conv:   open(100),
			events: []baton.Event{pass(200, otherID, batonID, "second")},
			want:   want{status: baton.StatusOpen, meta: ptr("first"), unread: ptr(2), openedNow: ptr(false), ownerTS: ptr(int64(200))},
			fx:     wantFx{handoverKind: "pass", from: otherID, to: batonID}},
		{name: "take closes as taken back",
			conv:   open(100),
			events: []baton.Event{take(200, batonID, botApp, "agent idle")},
			want:   want{status: baton.StatusClosed, reason: ptr(baton.CloseTakenBack), owner: ptr(botApp), closedNow: ptr(true), ownerTS: ptr(int64(200))},
			fx:     wantFx{handoverKind: "take", from: batonID, to: botApp, changed: ptr(true)}},
		{name: "take without new owner goes to the Primary",
			conv:   open(100),
			events: []baton.Event{take(200, batonID, "", "")},
			want:   want{status: baton.StatusClosed, reason: ptr(baton.CloseTakenBack), owner: ptr(botApp)},
			fx:     wantFx{handoverKind: "take", from: batonID, to: botApp}},
		{name: "pass elsewhere closes as passed",
			conv:   open(100),
			events: []baton.Event{pass(200, batonID, otherID, "")},
			want:   want{status: baton.StatusClosed, reason: ptr(baton.ClosePassed), owner: ptr(otherID), closedNow: ptr(true)},
			fx:     wantFx{handoverKind: "pass", from: batonID, to: otherID}},
		{name: "pass between others records the owner only (routing-cr broadcast)",
			conv:   botOwned(100),
			events: []baton.Event{pass(200, botApp, inboxID, "")},
			want:   want{status: baton.StatusBot, owner: ptr(inboxID), ownerTS: ptr(int64(200)), openedNow: ptr(false)},
			fx:     wantFx{handoverKind: "pass", from: botApp, to: inboxID, changed: ptr(true)}},
		{name: "Page Inbox Done passes back to the bot",
			conv:   botOwned(100),
			events: []baton.Event{pass(150, botApp, inboxID, ""), pass(200, inboxID, botApp, "Pass thread control from Page Inbox")},
			want:   want{status: baton.StatusBot, owner: ptr(botApp)},
			fx:     wantFx{handoverKind: "pass", from: inboxID, to: botApp}},
		{name: "a pass clears owner unsure",
			conv:   func() baton.Conversation { c := botOwned(100); c.OwnerUnsure = true; return c }(),
			events: []baton.Event{pass(200, botApp, batonID, "")},
			want:   want{unsure: ptr(false), status: baton.StatusOpen},
			fx:     wantFx{handoverKind: "pass", from: botApp, to: batonID}},
		{name: "handover at the same millisecond as the applied one applies",
			conv:   open(200),
			events: []baton.Event{take(200, batonID, botApp, "")},
			want:   want{status: baton.StatusClosed, reason: ptr(baton.CloseTakenBack)},
			fx:     wantFx{handoverKind: "take", from: batonID, to: botApp}},

		// Out of order: a handover older than the applied one changes nothing.
		{name: "stale pass to Baton changes nothing",
			conv:   botOwned(300),
			events: []baton.Event{pass(200, botApp, batonID, "late")},
			want:   want{status: baton.StatusBot, owner: ptr(botApp), ownerTS: ptr(int64(300)), meta: ptr(""), openedNow: ptr(false)},
			fx:     wantFx{handoverKind: "pass_stale", from: botApp, to: batonID, changed: ptr(false)}},
		{name: "stale take older than the applied pass changes nothing",
			conv:   botOwned(100),
			events: []baton.Event{pass(300, botApp, batonID, "m"), take(200, batonID, botApp, "")},
			want:   want{status: baton.StatusOpen, owner: ptr(batonID), ownerTS: ptr(int64(300)), reason: ptr(""), closedNow: ptr(false)},
			fx:     wantFx{handoverKind: "take_stale", from: batonID, to: botApp, changed: ptr(false)}},
		{name: "pass and take in reverse order end where the newest says",
			conv:   botOwned(100),
			events: []baton.Event{take(400, batonID, botApp, ""), pass(300, botApp, batonID, "m")},
			want:   want{status: baton.StatusBot, owner: ptr(botApp), ownerTS: ptr(int64(400)), openedNow: ptr(false)},
			fx:     wantFx{handoverKind: "pass_stale", from: botApp, to: batonID}},

		// Request control is recorded, not obeyed.
		{name: "request is recorded and changes no owner",
			conv: botOwned(100),
			events: []baton.Event{func() baton.Event {
				e := handover(baton.KindRequest, 200, "", "", `{"reason":"VIP"}`)
				e.Handover.RequestedOwner = inboxID
				return e
			}()},
			want: want{status: baton.StatusBot, owner: ptr(botApp), ownerTS: ptr(int64(100))},
			fx:   wantFx{handoverKind: "request", to: inboxID, changed: ptr(false)}},

		// Standby history and the live part.
		{name: "standby message is the bot's history",
			conv:   botOwned(100),
			events: []baton.Event{userMsg(sbCh, 200, "m_1", "hi bot")},
			want:   want{status: baton.StatusBot, unread: ptr(0), unsure: ptr(false), lastUser: ptr(int64(200))},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorUser, part: baton.PartBot, mid: "m_1", kind: "message"}, changed: ptr(true)}},
		{name: "message while Baton owns is live and unread",
			conv:   open(100),
			events: []baton.Event{userMsg(msgCh, 200, "m_1", "hi agent")},
			want:   want{unread: ptr(3), unsure: ptr(false)},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorUser, part: baton.PartLive, mid: "m_1"}}},
		{name: "standby history then pass then live",
			conv:   botOwned(100),
			events: []baton.Event{userMsg(sbCh, 150, "m_1", "a"), userMsg(sbCh, 160, "m_2", "b"), pass(200, botApp, batonID, "x"), userMsg(msgCh, 250, "m_3", "c")},
			want:   want{status: baton.StatusOpen, unread: ptr(1), lastUser: ptr(int64(250))},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorUser, part: baton.PartLive, mid: "m_3"}}},
		{name: "message after close is not unread",
			conv:   closed(100),
			events: []baton.Event{userMsg(sbCh, 200, "m_1", "thanks")},
			want:   want{status: baton.StatusClosed, unread: ptr(0)},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorUser, part: baton.PartBot}}},
		{name: "postback while open is live and unread",
			conv:   open(100),
			events: []baton.Event{postback(msgCh, 200, "m_pb", "Talk to a person", "HUMAN")},
			want:   want{unread: ptr(3), lastUser: ptr(int64(200))},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorUser, part: baton.PartLive, mid: "m_pb", kind: "postback"}}},
		{name: "postback without mid gets a stable one from its dedupe key",
			conv:   botOwned(100),
			events: []baton.Event{postback(sbCh, 200, "", "Get Started", "")},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorUser, part: baton.PartBot, mid: "postback:postback:standby", kind: "postback"}}},
		{name: "message without mid gets a stable one from its dedupe key",
			conv:   botOwned(100),
			events: []baton.Event{userMsg(sbCh, 200, "", "x")},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorUser, part: baton.PartBot, mid: "event:message:standby"}}},
		// PROTOCOL.md §4.5: events may come in any order. A standby message
		// from the bot-owned period that arrives after the pass to Baton is
		// still the bot's history: not live, not unread, and no reason to
		// doubt the owner.
		{name: "delayed standby message older than the pass stays bot history",
			conv:   botOwned(100),
			events: []baton.Event{pass(300, botApp, batonID, "x"), userMsg(sbCh, 200, "m_old", "said to the bot")},
			want:   want{status: baton.StatusOpen, unread: ptr(0), unsure: ptr(false), lastUser: ptr(int64(200))},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorUser, part: baton.PartBot, mid: "m_old"}}},

		// Echo authors.
		{name: "Baton's echo is the agent's, live, matched to the outbox",
			conv:   open(100),
			events: []baton.Event{echo(msgCh, 200, "m_e", batonID, "baton:42")},
			want:   want{unread: ptr(2), lastUser: ptr(int64(0))},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorAgent, part: baton.PartLive, mid: "m_e", outboxID: 42}, changed: ptr(true)}},
		{name: "Baton's echo without outbox metadata",
			conv:   open(100),
			events: []baton.Event{echo(msgCh, 200, "m_e", batonID, "")},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorAgent, part: baton.PartLive}}},
		{name: "another app's baton: metadata is not Baton's outbox",
			conv:   botOwned(100),
			events: []baton.Event{echo(sbCh, 200, "m_e", otherID, "baton:42")},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorApp, part: baton.PartBot}}},
		{name: "bot echo on standby is bot history",
			conv:   botOwned(100),
			events: []baton.Event{echo(sbCh, 200, "m_e", botApp, "")},
			want:   want{unread: ptr(0), unsure: ptr(false)},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorBot, part: baton.PartBot}}},
		{name: "Page Inbox echo",
			conv:   botOwned(100),
			events: []baton.Event{echo(sbCh, 200, "m_e", inboxID, "")},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorPageInbox, part: baton.PartBot}}},
		{name: "bot echo with the Primary unknown is another app's",
			page:   func(p *baton.Page) { p.PrimaryAppID = "" },
			conv:   idle(),
			events: []baton.Event{echo(sbCh, 200, "m_e", botApp, "")},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorApp, part: baton.PartBot}}},
		{name: "echo while open does not count as unread",
			conv:   open(100),
			events: []baton.Event{echo(sbCh, 200, "m_e", botApp, "")},
			want:   want{unread: ptr(2)},
			fx:     wantFx{msg: &wantMsg{author: baton.AuthorBot, part: baton.PartLive}}},

		// The window clock (PROTOCOL.md §11).
		{name: "window clock from a message on either channel",
			conv:   botOwned(100),
			events: []baton.Event{userMsg(sbCh, 200, "m_1", ""), userMsg(msgCh, 300, "m_2", "")},
			want:   want{lastUser: ptr(int64(300))}},
		{name: "window clock from a postback",
			conv:   botOwned(100),
			events: []baton.Event{postback(sbCh, 400, "m_p", "t", "")},
			want:   want{lastUser: ptr(int64(400))}},
		{name: "window clock from a referral",
			conv:   botOwned(100),
			events: []baton.Event{ev(baton.KindReferral, msgCh, 500)},
			want:   want{lastUser: ptr(int64(500)), unread: ptr(0)},
			fx:     wantFx{changed: ptr(true), noMsg: true}},
		{name: "window clock never moves back",
			conv:   botOwned(100),
			events: []baton.Event{userMsg(sbCh, 500, "m_1", ""), userMsg(sbCh, 300, "m_2", "")},
			want:   want{lastUser: ptr(int64(500))}},
		{name: "echoes, reads, deliveries, reactions, optins leave the window clock",
			conv: botOwned(100),
			events: []baton.Event{echo(sbCh, 600, "m_e", botApp, ""), receipt(baton.KindRead, 700, 650), receipt(baton.KindDelivery, 800, 750),
				reaction(900, "m_e", "love", "", "react"), ev(baton.KindOptin, msgCh, 950), ev(baton.KindUnknown, msgCh, 990)},
			want: want{lastUser: ptr(int64(0))}},

		// Receipts move forward only.
		{name: "read watermark moves forward",
			conv:   open(100),
			events: []baton.Event{receipt(baton.KindRead, 0, 500)},
			want:   want{readWM: ptr(int64(500)), unread: ptr(2)},
			fx:     wantFx{changed: ptr(true), noMsg: true}},
		{name: "older read watermark changes nothing",
			conv:   open(100),
			events: []baton.Event{receipt(baton.KindRead, 0, 500), receipt(baton.KindRead, 0, 400)},
			want:   want{readWM: ptr(int64(500))},
			fx:     wantFx{changed: ptr(false)}},
		{name: "delivery watermark without timestamp",
			conv:   open(100),
			events: []baton.Event{receipt(baton.KindDelivery, 0, 700), receipt(baton.KindDelivery, 0, 600)},
			want:   want{deliveredWM: ptr(int64(700)), readWM: ptr(int64(0))},
			fx:     wantFx{changed: ptr(false)}},

		// Owner unsure (PROTOCOL.md §16): the channel is a hint.
		{name: "user event on standby while Baton owns: unsure",
			conv:   open(100),
			events: []baton.Event{userMsg(sbCh, 200, "m_1", "")},
			want:   want{unsure: ptr(true), owner: ptr(batonID), status: baton.StatusOpen}},
		{name: "postback on standby while Baton owns: unsure",
			conv:   open(100),
			events: []baton.Event{postback(sbCh, 200, "", "t", "")},
			want:   want{unsure: ptr(true)}},
		{name: "user event on messaging while another app owns: unsure",
			conv:   botOwned(100),
			events: []baton.Event{userMsg(msgCh, 200, "m_1", "")},
			want:   want{unsure: ptr(true), owner: ptr(botApp)}},
		{name: "user event on messaging of an idle thread: sure",
			conv:   idle(),
			events: []baton.Event{userMsg(msgCh, 200, "m_1", "")},
			want:   want{unsure: ptr(false), owner: ptr("")}},
		{name: "user event on standby while the bot owns: sure",
			conv:   botOwned(100),
			events: []baton.Event{userMsg(sbCh, 200, "m_1", "")},
			want:   want{unsure: ptr(false), owner: ptr(botApp)}},
		{name: "user event on messaging while Baton owns: sure",
			conv:   open(100),
			events: []baton.Event{userMsg(msgCh, 200, "m_1", "")},
			want:   want{unsure: ptr(false)}},
		{name: "standby message on an idle thread gives it to the known Primary",
			conv:   idle(),
			events: []baton.Event{userMsg(sbCh, 200, "m_1", "")},
			want:   want{owner: ptr(botApp), unsure: ptr(false), status: baton.StatusBot}},
		{name: "standby message on an idle thread with the Primary unknown",
			page:   func(p *baton.Page) { p.PrimaryAppID = "" },
			conv:   idle(),
			events: []baton.Event{userMsg(sbCh, 200, "m_1", "")},
			want:   want{owner: ptr(""), unsure: ptr(false)}},
		{name: "echo on an unexpected channel does not make the owner unsure",
			conv:   open(100),
			events: []baton.Event{echo(sbCh, 200, "m_e", botApp, "")},
			want:   want{unsure: ptr(false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := page()
			if tt.page != nil {
				tt.page(&p)
			}
			c := tt.conv
			var fx conversation.Effects
			for i := range tt.events {
				fx = conversation.Apply(&p, &c, &tt.events[i], now)
				if fx.Message != nil && fx.Message.ConversationID != c.ID {
					t.Errorf("message for conversation %d, want %d", fx.Message.ConversationID, c.ID)
				}
				if fx.Handover != nil && (fx.Handover.ConversationID != c.ID || fx.Handover.TimestampMS != tt.events[i].TimestampMS) {
					t.Errorf("handover %+v: wrong conversation or time", fx.Handover)
				}
			}
			tt.want.check(t, &c)
			tt.fx.check(t, fx)
		})
	}
}

// Reactions target a message by mid; an unreact clears it; the emoji is
// preferred to the word.
func TestApplyReaction(t *testing.T) {
	tests := []struct {
		name string
		ev   baton.Event
		want *conversation.Reaction
	}{
		{"react with emoji", reaction(1, "m_1", "love", "❤️", "react"), &conversation.Reaction{MID: "m_1", Reaction: "❤️"}},
		{"react without emoji", reaction(1, "m_1", "like", "", "react"), &conversation.Reaction{MID: "m_1", Reaction: "like"}},
		{"unreact with only mid and action", reaction(1, "m_1", "", "", "unreact"), &conversation.Reaction{MID: "m_1", Reaction: ""}},
		{"unreact carrying the old reaction", reaction(1, "m_1", "love", "❤️", "unreact"), &conversation.Reaction{MID: "m_1", Reaction: ""}},
		{"no mid", reaction(1, "", "love", "", "react"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := page(), open(100)
			before := c
			fx := conversation.Apply(&p, &c, &tt.ev, now)
			switch {
			case tt.want == nil && fx.Reaction != nil:
				t.Errorf("reaction %+v, want none", fx.Reaction)
			case tt.want != nil && (fx.Reaction == nil || *fx.Reaction != *tt.want):
				t.Errorf("reaction %+v, want %+v", fx.Reaction, tt.want)
			}
			if fx.Message != nil || fx.Handover != nil || c.Unread != before.Unread || c.LastUserEventMS != before.LastUserEventMS {
				t.Errorf("a reaction changed more than the reaction: %+v, %+v", fx, c)
			}
		})
	}
}

// Learning the Primary's id, in the order of PROTOCOL.md §13.3: the
// configured one (already on the Page), app_roles, a take's new owner, the
// previous owner of a pass to Baton. The Page Inbox is never the Primary.
func TestLearnPrimary(t *testing.T) {
	tests := []struct {
		name    string
		primary string // the Page's Primary before the events
		events  []baton.Event
		want    string
		changed bool // the last event reported a Page change
	}{
		{"configured Primary kept on a take to another app", botApp, []baton.Event{take(200, batonID, otherID, "")}, botApp, false},
		{"configured Primary kept on a pass from another app", botApp, []baton.Event{pass(200, otherID, batonID, "")}, botApp, false},
		{"take's new owner when unknown", "", []baton.Event{take(200, batonID, botApp, "")}, botApp, true},
		{"take to the Page Inbox teaches nothing", "", []baton.Event{take(200, batonID, inboxID, "")}, "", false},
		{"take without new owner teaches nothing", "", []baton.Event{take(200, batonID, "", "")}, "", false},
		{"previous owner of a pass to Baton when unknown", "", []baton.Event{pass(200, botApp, batonID, "")}, botApp, true},
		{"pass to Baton from the Page Inbox teaches nothing", "", []baton.Event{pass(200, inboxID, batonID, "")}, "", false},
		{"pass to Baton from an idle thread teaches nothing", "", []baton.Event{pass(200, "", batonID, "")}, "", false},
		{"pass between other apps teaches nothing", "", []baton.Event{pass(200, botApp, otherID, "")}, "", false},
		{"a take beats a later pass's previous owner", "", []baton.Event{take(200, batonID, botApp, ""), pass(300, otherID, batonID, "")}, botApp, false},
		{"a stale take still names the Primary", "", []baton.Event{pass(300, "", batonID, ""), take(200, batonID, botApp, "")}, botApp, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := page()
			p.PrimaryAppID = tt.primary
			c := idle()
			var fx conversation.Effects
			for i := range tt.events {
				fx = conversation.Apply(&p, &c, &tt.events[i], now)
			}
			if p.PrimaryAppID != tt.want {
				t.Errorf("Primary = %q, want %q", p.PrimaryAppID, tt.want)
			}
			if fx.PageChanged != tt.changed {
				t.Errorf("PageChanged = %v, want %v", fx.PageChanged, tt.changed)
			}
		})
	}
}

func appRoles(roles map[string][]string) baton.Event {
	e := ev(baton.KindAppRoles, msgCh, 100)
	e.PSID, e.AppRoles = "", roles
	return e
}

// app_roles (PROTOCOL.md §5.8): Baton's role under its own id; a
// primary_receiver key names the Primary.
func TestApplyPageEvent(t *testing.T) {
	tests := []struct {
		name        string
		before      baton.Page
		ev          baton.Event
		wantPrimary string
		wantRole    string
		changed     bool
	}{
		{"Baton becomes secondary",
			baton.Page{BatonAppID: batonID}, appRoles(map[string][]string{batonID: {"secondary_receiver"}}), "", "secondary_receiver", true},
		{"Baton loses every role",
			baton.Page{BatonAppID: batonID, BatonRole: "secondary_receiver"}, appRoles(map[string][]string{batonID: {}}), "", "", true},
		{"unknown roles are ignored",
			baton.Page{BatonAppID: batonID, BatonRole: "secondary_receiver"}, appRoles(map[string][]string{batonID: {"automation", "secondary_receiver"}}), "", "secondary_receiver", false},
		{"only an unknown role is no role",
			baton.Page{BatonAppID: batonID, BatonRole: "secondary_receiver"}, appRoles(map[string][]string{batonID: {"automation"}}), "", "", true},
		{"a primary_receiver key names the Primary",
			baton.Page{BatonAppID: batonID}, appRoles(map[string][]string{botApp: {"primary_receiver"}, batonID: {"secondary_receiver"}}), botApp, "secondary_receiver", true},
		{"app_roles beats a Primary learnt from a take",
			baton.Page{BatonAppID: batonID, PrimaryAppID: otherID, BatonRole: "secondary_receiver"}, appRoles(map[string][]string{botApp: {"primary_receiver"}}), botApp, "secondary_receiver", true},
		{"a configured Primary beats app_roles (§13.3)",
			baton.Page{BatonAppID: batonID, PrimaryAppID: otherID, PrimaryPinned: true, BatonRole: "secondary_receiver"}, appRoles(map[string][]string{botApp: {"primary_receiver"}}), otherID, "secondary_receiver", false},
		{"Baton as primary is not the bot",
			baton.Page{BatonAppID: batonID}, appRoles(map[string][]string{batonID: {"primary_receiver"}}), "", "primary_receiver", true},
		{"another app's secondary role changes nothing",
			baton.Page{BatonAppID: batonID, PrimaryAppID: botApp, BatonRole: "secondary_receiver"}, appRoles(map[string][]string{otherID: {"secondary_receiver"}}), botApp, "secondary_receiver", false},
		{"the same roles again change nothing",
			baton.Page{BatonAppID: batonID, PrimaryAppID: botApp, BatonRole: "secondary_receiver"}, appRoles(map[string][]string{botApp: {"primary_receiver"}, batonID: {"secondary_receiver"}}), botApp, "secondary_receiver", false},
		{"empty map",
			baton.Page{BatonAppID: batonID, PrimaryAppID: botApp, BatonRole: "secondary_receiver"}, appRoles(map[string][]string{}), botApp, "secondary_receiver", false},
		{"not an app_roles event",
			baton.Page{BatonAppID: batonID}, pass(1, botApp, batonID, ""), "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.before
			got := conversation.ApplyPageEvent(&p, &tt.ev)
			if got != tt.changed || p.PrimaryAppID != tt.wantPrimary || p.BatonRole != tt.wantRole {
				t.Errorf("changed %v, Primary %q, role %q; want %v, %q, %q", got, p.PrimaryAppID, p.BatonRole, tt.changed, tt.wantPrimary, tt.wantRole)
			}
		})
	}
}

// The outbox metadata round-trips, and nothing else parses as an outbox id.
func TestOutboxMetadata(t *testing.T) {
	if id, ok := conversation.OutboxIDFromMetadata(conversation.OutboxMetadata(7)); !ok || id != 7 {
		t.Errorf("round trip = %d, %v", id, ok)
	}
	for _, s := range []string{"", "baton:", "baton:0", "baton:-3", "baton:x", "Baton:7", "bot:7", " baton:7", "baton:7 ", "baton:99999999999999999999"} {
		if id, ok := conversation.OutboxIDFromMetadata(s); ok {
			t.Errorf("OutboxIDFromMetadata(%q) = %d, true", s, id)
		}
	}
}

// The inbox preview is the text, cut at 140 characters (not bytes), or a
// placeholder for attachments.
func TestPreview(t *testing.T) {
	long := strings.Repeat("ä", 141)
	tests := []struct {
		name string
		m    baton.Message
		want string
	}{
		{"text", baton.Message{Text: "hi"}, "hi"},
		{"exactly 140", baton.Message{Text: long[:140*2]}, long[:140*2]},
		{"cut at 140 runes", baton.Message{Text: long}, long[:140*2] + "…"},
		{"attachment only", baton.Message{Attachments: []byte(`[{"type":"image"}]`)}, "[attachment]"},
		{"text wins over attachment", baton.Message{Text: "look", Attachments: []byte(`[]`)}, "look"},
		{"nothing", baton.Message{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := conversation.Preview(&tt.m); got != tt.want {
				t.Errorf("Preview = %q, want %q", got, tt.want)
			}
		})
	}
}
