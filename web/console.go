package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
	"github.com/baton-chat/baton/internal/realtime"
	"github.com/baton-chat/baton/templates"
)

// Console is what the agent console needs, injected by cmd/baton.
type Console struct {
	Store   baton.ConsoleStore
	Service *conversation.Service
	// Page returns the connected Page (Baton's and the Primary's ids).
	Page func(ctx context.Context) (*baton.Page, error)
	// Hub delivers change notifications to this instance's websockets.
	Hub *realtime.Hub
	// Location is the time zone times are shown in; nil = UTC.
	Location *time.Location
	// Team carries out assignment, status, tags and notes; nil hides them.
	Team *conversation.Team
	// TeamStore reads tags, notes, counts and canned replies; nil hides them.
	TeamStore baton.TeamStore
	// IdleWarning says when an open conversation goes back to the bot for
	// want of a reply; nil: no idle auto-return.
	IdleWarning func(ctx context.Context, id int64) (conversation.IdleWarning, error)
	// Presence records and lists who has a conversation open; nil hides it.
	Presence Presence
	// Announce tells every open browser that the conversation changed
	// (a new viewer), without a database change of its own.
	Announce func(conversationID int64)
}

// Presence is who has a conversation open ("Ana is viewing").
type Presence interface {
	MarkViewing(ctx context.Context, conversationID, userID int64, now time.Time, fresh time.Duration) (bool, error)
	Viewers(ctx context.Context, conversationID, userID int64, since time.Time) ([]string, error)
}

// viewerFresh is how long a tab's heartbeat (every 15 s, static/app.js)
// keeps its viewer shown: three beats, so one late beat does not flicker.
const viewerFresh = 45 * time.Second

// viewersText says who else is looking: "Ana is viewing", "Ana and Sam are
// viewing", "Ana, Sam and 2 others are viewing".
func viewersText(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0] + " is viewing"
	case 2:
		return names[0] + " and " + names[1] + " are viewing"
	case 3:
		return names[0] + ", " + names[1] + " and " + names[2] + " are viewing"
	}
	return fmt.Sprintf("%s, %s and %d others are viewing", names[0], names[1], len(names)-2)
}

func (c *Console) now() time.Time {
	if c.Service != nil && c.Service.Now != nil {
		return c.Service.Now()
	}
	return time.Now()
}

func (c *Console) loc() *time.Location {
	if c.Location != nil {
		return c.Location
	}
	return time.UTC
}

// folderFor parses the folder parameter, defaulting to the inbox; the
// bot-owned and requested folders are for those who may watch the bot.
func folderFor(s string, u *baton.User, mayWatch bool) baton.Folder {
	switch baton.Folder(s) {
	case baton.FolderMine, baton.FolderDone, baton.FolderUnassigned, baton.FolderMentions:
		return baton.Folder(s)
	case baton.FolderBot, baton.FolderRequested, baton.FolderAll:
		if mayWatch {
			return baton.Folder(s)
		}
	}
	return baton.FolderInbox
}

// mayWatchBot: supervisors see bot-owned threads (SPEC "Who uses it").
func (c *Console) mayWatchBot(u *baton.User) bool {
	return u != nil && (u.Role.AtLeast(baton.RoleSupervisor) || c.Service.AgentsMayRequest)
}

// mayView: agents see conversations handed to Baton (open or done);
// supervisors see everything.
func (c *Console) mayView(u *baton.User, conv *baton.Conversation) bool {
	return conv.Status != baton.StatusBot || c.mayWatchBot(u)
}

func folderLinks(current baton.Folder, extra url.Values, watch bool, counts, unread baton.FolderCounts) []templates.FolderLink {
	type f struct {
		k baton.Folder
		l string
	}
	list := []f{{baton.FolderInbox, "Inbox"}, {baton.FolderMine, "Mine"}, {baton.FolderUnassigned, "Unassigned"}}
	if counts[baton.FolderMentions] > 0 || current == baton.FolderMentions {
		list = append(list, f{baton.FolderMentions, "Mentions"})
	}
	if watch {
		list = append(list, f{baton.FolderBot, "Bot"}, f{baton.FolderRequested, "Requested"})
	}
	list = append(list, f{baton.FolderDone, "Done"})
	if watch {
		list = append(list, f{baton.FolderAll, "All"})
	}
	out := make([]templates.FolderLink, len(list))
	for i, x := range list {
		href := "/?folder=" + string(x.k)
		if e := extra.Encode(); e != "" {
			href += "&" + e
		}
		out[i] = templates.FolderLink{Key: string(x.k), Label: x.l, Href: href, Current: x.k == current, Count: counts[x.k], Unread: unread[x.k]}
	}
	return out
}

// ownerBadge names the owner for the list and the header.
func ownerBadge(p *baton.Page, conv *baton.Conversation) templates.Badge {
	switch p.OwnerKindOf(conv.OwnerAppID) {
	case baton.OwnerBaton:
		return templates.Badge{Label: "Baton", Class: "badge--baton", Title: "Baton owns the thread: agents answer"}
	case baton.OwnerBot:
		return templates.Badge{Label: "Bot", Class: "badge--bot", Title: "The bot (Primary Receiver, app " + conv.OwnerAppID + ") owns the thread"}
	case baton.OwnerPageInbox:
		return templates.Badge{Label: "Page Inbox", Class: "badge--other", Title: "Meta's Page Inbox owns the thread"}
	case baton.OwnerIdle:
		if conv.Status == baton.StatusBot && p.PrimaryAppID == "" && conv.LastMessageMS > 0 {
			return templates.Badge{Label: "Bot", Class: "badge--bot", Title: "Another app owns the thread (Baton hears it on standby)"}
		}
		return templates.Badge{Label: "Idle", Class: "badge--idle", Title: "Nobody owns the thread"}
	}
	return templates.Badge{Label: "Other app", Class: "badge--other", Title: "App " + conv.OwnerAppID + " owns the thread"}
}

// windowBadge is the countdown of the reply window, for open threads.
func (c *Console) windowBadge(conv *baton.Conversation) templates.Badge {
	if conv.Status != baton.StatusOpen {
		return templates.Badge{}
	}
	w := c.Service.Window(conv)
	switch w.Tier {
	case conversation.TierResponse:
		class := "badge--ok"
		if w.Left < 2*time.Hour {
			class = "badge--warn"
		}
		return templates.Badge{Label: conversation.Human(w.Left) + " left", Class: class, Title: "Time left in the 24-hour window"}
	case conversation.TierHumanAgent:
		return templates.Badge{Label: "Human agent · " + conversation.Human(w.Left), Class: "badge--warn", Title: "Past 24 h: replies use the HUMAN_AGENT tag (7 days)"}
	case conversation.TierClosed:
		return templates.Badge{Label: "Window closed", Class: "badge--danger", Title: w.Describe(c.now())}
	}
	return templates.Badge{}
}

func initials(name string) string {
	var out []rune
	for _, w := range strings.Fields(name) {
		for _, r := range w {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				out = append(out, unicode.ToUpper(r))
				break
			}
		}
		if len(out) == 2 {
			break
		}
	}
	if len(out) == 0 {
		return "?"
	}
	return string(out)
}

// shortTime shows today's times as 14:02, older ones with the date.
func (c *Console) shortTime(ms int64) (string, string) {
	if ms <= 0 {
		return "", ""
	}
	t := time.UnixMilli(ms).In(c.loc())
	now := c.now().In(c.loc())
	iso := t.Format(time.RFC3339)
	if t.Year() == now.Year() && t.YearDay() == now.YearDay() {
		return t.Format("15:04"), iso
	}
	if now.Sub(t) < 6*24*time.Hour {
		return t.Format("Mon 15:04"), iso
	}
	return t.Format("Jan 2"), iso
}

func (c *Console) listItems(p *baton.Page, convs []*baton.Conversation, selected int64, folder baton.Folder, extra url.Values,
	agents []*baton.Agent, extras map[int64]*baton.ListExtra) []templates.ListItem {
	names := map[int64]string{}
	for _, a := range agents {
		names[a.UserID] = a.Name
	}
	keep := url.Values{}
	for k, v := range extra {
		keep[k] = v
	}
	if folder != baton.FolderInbox {
		keep.Set("folder", string(folder))
	}
	out := make([]templates.ListItem, len(convs))
	for i, conv := range convs {
		t, iso := c.shortTime(conv.LastMessageMS)
		href := "/conversations/" + strconv.FormatInt(conv.ID, 10)
		if e := keep.Encode(); e != "" {
			href += "?" + e
		}
		it := templates.ListItem{
			ID: conv.ID, Href: href, Name: conv.Name(), Initials: initials(conv.Name()), Pic: conv.ProfilePic,
			LastMessage: conv.LastMessageText, Time: t, TimeISO: iso, Unread: conv.Unread,
			Owner: ownerBadge(p, conv), Window: c.windowBadge(conv), Selected: conv.ID == selected,
		}
		if conv.AssignedUserID != nil && conv.Status == baton.StatusOpen {
			it.Assignee = names[*conv.AssignedUserID]
		}
		if x := extras[conv.ID]; x != nil {
			it.Tags = x.Tags
			it.LastAuthor = lastAuthor(p, x)
		}
		switch {
		case conv.Closing:
			it.Status = "handing back"
		case conv.RequestedAt != nil && c.Service.RequestIgnored(conv):
			it.Status = "request ignored"
		case conv.RequestedAt != nil:
			it.Status = "requested"
		case conv.Status == baton.StatusClosed:
			it.Status = closeLabel(conv)
		}
		out[i] = it
	}
	return out
}

// lastAuthor prefixes the list's last message so an agent can tell at a
// glance whether the person is waiting ("" = the person's own words) or
// the bot or an agent spoke last (the bot's "Connecting you…" is not
// something the person said).
func lastAuthor(p *baton.Page, x *baton.ListExtra) string {
	switch x.LastAuthor {
	case baton.AuthorUser, "":
		return ""
	case baton.AuthorAgent:
		return "Agent"
	case baton.AuthorPageInbox:
		return "Page Inbox"
	}
	if x.LastAppID == p.BatonAppID && x.LastAppID != "" {
		return "Agent"
	}
	if x.LastAppID == p.PrimaryAppID || p.PrimaryAppID == "" {
		return "Bot"
	}
	return "App"
}

func closeLabel(conv *baton.Conversation) string {
	switch conv.CloseReason {
	case baton.CloseDone:
		if conv.DoneOutcome != "" {
			return "done · " + conv.DoneOutcome
		}
		return "done"
	case baton.CloseTakenBack:
		return "taken back"
	case baton.CloseExpired:
		return "expired"
	case baton.CloseIdle:
		return "idle return"
	}
	return "passed on"
}

// conversationProps builds the open conversation's view.
func (c *Console) conversationProps(ctx context.Context, u *baton.User, p *baton.Page, conv *baton.Conversation, csrf string) (*templates.ConversationProps, error) {
	msgs, err := c.Store.Messages(ctx, conv.ID, 0, 100)
	if err != nil {
		return nil, err
	}
	hos, err := c.Store.Handovers(ctx, conv.ID)
	if err != nil {
		return nil, err
	}
	box, err := c.Store.OutboxOf(ctx, conv.ID)
	if err != nil {
		return nil, err
	}
	cp := &templates.ConversationProps{
		ID: conv.ID, Seq: conv.Seq, Name: conv.Name(), Initials: initials(conv.Name()), Pic: conv.ProfilePic, PSID: conv.PSID,
		Owner: ownerBadge(p, conv), OwnerSentence: conversation.OwnerSentence(p, conv), OwnerUnsure: conv.OwnerUnsure,
		Window: c.windowBadge(conv), CSRFToken: csrf,
	}
	if c.Presence != nil && u != nil {
		// Presence is real time, whatever clock the window rules use.
		names, err := c.Presence.Viewers(ctx, conv.ID, u.ID, time.Now().Add(-viewerFresh))
		if err != nil {
			return nil, err
		}
		cp.Viewers = viewersText(names)
	}
	if len(msgs) == 100 {
		cp.OlderHref = fmt.Sprintf("/conversations/%d/older?before=%d", conv.ID, msgs[0].ID)
	}
	cp.Entries = c.entries(p, conv, msgs, hos)
	if conv.Status == baton.StatusOpen { // the bot's reason for handing over, or that it gave none
		md := conversation.ParseBotMetadata(conv.HandoverMetadata)
		hr := &templates.HandoverReason{IsJSON: md.IsJSON, Raw: md.Raw, Reason: md.Reason, Summary: md.Summary,
			Team: md.Team, Priority: md.Priority, Agent: md.Agent, Other: md.Other}
		if conv.OpenedAt != nil {
			hr.When = conv.OpenedAt.In(c.loc()).Format("Jan 2, 15:04")
		}
		cp.Handover = hr
	}
	for _, h := range hos {
		cp.Ownership = append(cp.Ownership, templates.OwnershipEntry{
			Time: time.UnixMilli(h.TimestampMS).In(c.loc()).Format("Jan 2 15:04:05"), Label: c.handoverLabel(p, h), Metadata: h.Metadata,
		})
	}
	for _, it := range box {
		if v, ok := outboxView(it); ok {
			cp.Outbox = append(cp.Outbox, v)
		}
	}
	canReply, why := c.Service.CanReply(p, conv)
	now := c.now()
	w := c.Service.Window(conv)
	cp.Composer = templates.ComposerProps{ConversationID: conv.ID, CanReply: canReply, Reason: why,
		WindowText: w.Describe(now), WindowTier: string(w.Tier), CSRFToken: csrf}
	cp.Composer.State = fmt.Sprintf("%t|%s|%s", canReply, why, w.Tier)
	cp.Actions = templates.ActionsProps{ConversationID: conv.ID, CSRFToken: csrf, Outcomes: conversation.Outcomes,
		CanDone: conv.Status == baton.StatusOpen && !conv.Closing}
	if cp.Actions.CanDone {
		cp.Actions.DonePreview = prettyJSON(c.Service.DonePreview(conv, u, conversation.Outcomes[0], "", nil))
	}
	if conv.RequestedAt != nil {
		cp.Actions.RequestIgnored = c.Service.RequestIgnored(conv)
		if cp.Actions.RequestIgnored {
			cp.Actions.Requested = "The bot ignored the request (asked " + conversation.Human(now.Sub(*conv.RequestedAt)) + " ago)"
		} else {
			cp.Actions.Requested = "Control requested " + conversation.Human(now.Sub(*conv.RequestedAt)) + " ago — waiting for the bot"
		}
		cp.Actions.CanAbandon = c.Service.MayRequest(u)
	}
	cp.Actions.CanRequest = conv.Status != baton.StatusOpen && c.Service.MayRequest(u) &&
		(conv.RequestedAt == nil || cp.Actions.RequestIgnored)
	cp.Contact = c.contactProps(conv, hos)
	if err := c.teamProps(ctx, u, conv, cp, csrf); err != nil {
		return nil, err
	}
	return cp, nil
}

func prettyJSON(s string) string {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return s
	}
	return string(b)
}

func (c *Console) appName(p *baton.Page, id string) string {
	switch p.OwnerKindOf(id) {
	case baton.OwnerBaton:
		return "Baton"
	case baton.OwnerBot:
		return "the bot"
	case baton.OwnerPageInbox:
		return "Page Inbox"
	case baton.OwnerIdle:
		return "nobody"
	}
	return "app " + id
}

func (c *Console) handoverLabel(p *baton.Page, h *baton.Handover) string {
	switch h.Kind {
	case "pass":
		return "Control passed from " + c.appName(p, h.FromAppID) + " to " + c.appName(p, h.ToAppID)
	case "take":
		return c.appName(p, h.ToAppID) + " took control from " + c.appName(p, h.FromAppID)
	case "pass_stale", "take_stale":
		return "Late " + strings.TrimSuffix(h.Kind, "_stale") + " event (older than the current owner; ignored)"
	case "request":
		return c.appName(p, h.ToAppID) + " asked the owner for control"
	case "request_sent":
		return "Baton requested control"
	case "done":
		return "Done: Baton passed control to " + c.appName(p, h.ToAppID)
	}
	return h.Kind
}

// entries merges messages and handovers in time order, with the bot's
// history marked as such.
func (c *Console) entries(p *baton.Page, conv *baton.Conversation, msgs []*baton.Message, hos []*baton.Handover) []templates.Entry {
	var out []templates.Entry
	hi := 0
	inBotPart := false
	for _, m := range msgs {
		for hi < len(hos) && hos[hi].TimestampMS <= m.TimestampMS {
			if d := c.divider(p, hos[hi]); d != nil {
				out = append(out, templates.Entry{Divider: d, At: hos[hi].TimestampMS})
				inBotPart = false
			}
			hi++
		}
		botPart := m.Part == baton.PartBot
		if botPart && !inBotPart {
			out = append(out, templates.Entry{Section: "Before handover — with the bot", At: m.TimestampMS})
		}
		inBotPart = botPart
		out = append(out, templates.Entry{Message: c.messageView(p, conv, m), At: m.TimestampMS})
	}
	for ; hi < len(hos); hi++ {
		if d := c.divider(p, hos[hi]); d != nil {
			out = append(out, templates.Entry{Divider: d, At: hos[hi].TimestampMS})
		}
	}
	return out
}

func (c *Console) divider(p *baton.Page, h *baton.Handover) *templates.DividerView {
	t := time.UnixMilli(h.TimestampMS).In(c.loc()).Format("Jan 2, 15:04")
	switch {
	case h.Kind == "pass" && h.ToAppID == p.BatonAppID:
		return &templates.DividerView{Label: "Handed over to Baton by " + c.appName(p, h.FromAppID), Metadata: h.Metadata, Class: "divider--in", Time: t}
	case h.Kind == "take":
		return &templates.DividerView{Label: strings.ToUpper(c.appName(p, h.ToAppID)[:1]) + c.appName(p, h.ToAppID)[1:] + " took the conversation back", Metadata: h.Metadata, Class: "divider--out", Time: t}
	case h.Kind == "done":
		return &templates.DividerView{Label: "Done — handed back to " + c.appName(p, h.ToAppID), Metadata: h.Metadata, Class: "divider--out", Time: t}
	case h.Kind == "pass":
		return &templates.DividerView{Label: "Control passed to " + c.appName(p, h.ToAppID), Metadata: h.Metadata, Class: "divider--out", Time: t}
	case h.Kind == "request_sent":
		return &templates.DividerView{Label: "Baton requested control", Metadata: h.Metadata, Class: "divider--note", Time: t}
	}
	return nil
}

func (c *Console) messageView(p *baton.Page, conv *baton.Conversation, m *baton.Message) *templates.MessageView {
	t, iso := c.shortTime(m.TimestampMS)
	v := &templates.MessageView{ID: m.ID, Text: m.Text, Time: t, TimeISO: iso, Reaction: m.Reaction,
		Postback: m.Kind == "postback", QuickReply: m.QuickReply, BotPart: m.Part == baton.PartBot}
	switch m.Author {
	case baton.AuthorUser:
		v.Class, v.Author = "user", conv.Name()
	case baton.AuthorAgent:
		v.Class, v.Author, v.Out = "agent", "Agent", true
	case baton.AuthorPageInbox:
		v.Class, v.Author, v.Out = "inbox", "Page Inbox", true
	default:
		v.Out = true
		if m.AppID != "" && m.AppID == p.PrimaryAppID || (p.PrimaryAppID == "" && m.AppID != p.BatonAppID) {
			v.Class, v.Author = "bot", "Bot"
		} else {
			v.Class, v.Author = "app", "App "+m.AppID
		}
	}
	if v.Out && m.TimestampMS > 0 {
		switch {
		case conv.ReadWatermark >= m.TimestampMS:
			v.Receipt = "Seen"
		case conv.DeliveredWatermark >= m.TimestampMS:
			v.Receipt = "Delivered"
		}
	}
	v.Attachments = attachmentViews(m.Attachments)
	return v
}

// attachmentViews shows attachments by type: images inline, files and
// media as links, anything unknown as "unsupported attachment".
func attachmentViews(raw json.RawMessage) []templates.AttachmentView {
	if len(raw) == 0 {
		return nil
	}
	var atts []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		URL     string `json:"url"`
		Payload *struct {
			URL   string `json:"url"`
			Title string `json:"title"`
		} `json:"payload"`
	}
	if json.Unmarshal(raw, &atts) != nil {
		return []templates.AttachmentView{{Type: "unknown", Unsupported: true}}
	}
	var out []templates.AttachmentView
	for _, a := range atts {
		u := a.URL
		title := a.Title
		if a.Payload != nil {
			if a.Payload.URL != "" {
				u = a.Payload.URL
			}
			if a.Payload.Title != "" {
				title = a.Payload.Title
			}
		}
		safe := strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")
		v := templates.AttachmentView{Type: a.Type, URL: u, Title: title}
		switch {
		case !safe:
			v.Unsupported = true
		case a.Type == "image":
			v.IsImage = true
		case a.Type == "video" || a.Type == "audio" || a.Type == "file" || a.Type == "fallback":
			if v.Title == "" {
				v.Title = strings.ToUpper(a.Type[:1]) + a.Type[1:] + " attachment"
			}
		default:
			v.Unsupported = true
		}
		out = append(out, v)
	}
	return out
}

// outboxView shows an unconfirmed message, or a failed pass/request.
func outboxView(it *baton.OutboxItem) (templates.OutboxView, bool) {
	v := templates.OutboxView{ID: it.ID, Kind: it.Kind, Text: it.Text, Error: it.LastError}
	if it.Text == "" && it.AttachmentURL != "" {
		v.Text = "Attachment: " + it.AttachmentURL
	}
	switch it.Status {
	case baton.OutboxPending, baton.OutboxSending:
		v.Pending = true
		v.Label = "Sending…"
		if it.Attempts > 1 {
			v.Label = fmt.Sprintf("Retrying (attempt %d)…", it.Attempts)
		}
		if it.Kind == "pass" {
			v.Text, v.Label = "", "Handing back to the bot…"
		}
		if it.Kind == "request" {
			v.Text, v.Label = "", "Sending the request for control…"
		}
	case baton.OutboxFailed:
		v.Failed, v.CanRetry = true, true
		v.Label = "Failed"
		switch it.Kind {
		case "pass":
			v.Text, v.Label = "", "Hand-back failed"
		case "request":
			v.Text, v.Label, v.CanRetry = "", "Request for control failed", false
		}
	default:
		return v, false
	}
	return v, true
}
