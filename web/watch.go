package web

import (
	"context"
	"net/http"
	"sort"
	"strconv"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
	"github.com/baton-chat/baton/templates"
)

// Sizes of the live watch: how many conversations, and how much of each
// history the signals read and the page shows.
const (
	watchLimit   = 60
	watchHistory = 40
	watchRecent  = 4
)

// watchRoutes registers the supervisors' live watch (SPEC "Beyond every
// peer" 4). Requesting control reuses POST /conversations/{id}/request.
func (s *Server) watchRoutes() {
	s.handle("GET /watch", baton.RoleSupervisor, s.showWatch)
}

// showWatch renders the live watch; with ?fragment=list only the list,
// which static/watch.js re-fetches on every change.
func (s *Server) showWatch(w http.ResponseWriter, r *http.Request) {
	page := s.pageData(r, "Live watch", "watch")
	items, err := s.cfg.Console.watchItems(r.Context(), page.CSRFToken)
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	if r.URL.Query().Get("fragment") == "list" {
		s.renderComponent(w, r, http.StatusOK, templates.WatchList(items))
		return
	}
	s.renderComponent(w, r, http.StatusOK, templates.Watch(templates.WatchProps{Page: page, Items: items}))
}

// watchItems lists the conversations the bot owns with their latest
// standby messages and escalation signals, strongest first.
func (c *Console) watchItems(ctx context.Context, csrf string) ([]templates.WatchItem, error) {
	p, err := c.Page(ctx)
	if err != nil {
		return nil, err
	}
	convs, err := c.Store.ListConversations(ctx, baton.ConversationFilter{Folder: baton.FolderAll, Limit: 200})
	if err != nil {
		return nil, err
	}
	type scored struct {
		item  templates.WatchItem
		score int
		last  int64
	}
	var list []scored
	for _, conv := range convs {
		if !botOwned(p, conv) {
			continue
		}
		if len(list) == watchLimit {
			break
		}
		msgs, err := c.Store.Messages(ctx, conv.ID, 0, watchHistory)
		if err != nil {
			return nil, err
		}
		// Only what happened since the thread last left Baton is the bot's
		// current exchange.
		if conv.ClosedAt != nil {
			since := conv.ClosedAt.UnixMilli()
			i := 0
			for i < len(msgs) && msgs[i].TimestampMS < since {
				i++
			}
			msgs = msgs[i:]
		}
		sigs := conversation.Signals(msgs)
		t, iso := c.shortTime(conv.LastMessageMS)
		it := templates.WatchItem{
			ID: conv.ID, Name: conv.Name(), Href: "/conversations/" + strconv.FormatInt(conv.ID, 10) + "?folder=bot",
			Owner: ownerBadge(p, conv), Time: t, TimeISO: iso, Score: conversation.Score(sigs),
			Requested: conv.RequestedAt != nil, Ignored: conv.RequestedAt != nil && c.Service.RequestIgnored(conv),
			CSRFToken: csrf, Reason: "Supervisor stepping in",
		}
		if conv.RequestedAt != nil {
			it.RequestedAgo = conversation.Human(c.now().Sub(*conv.RequestedAt))
		}
		if it.Ignored {
			it.Signals = append(it.Signals, templates.Badge{Label: "Request ignored", Class: "badge--danger",
				Title: "The bot has not answered the request for control"})
		}
		for _, sg := range sigs {
			class := "badge--warn"
			if sg.Weight >= 6 {
				class = "badge--danger"
			}
			it.Signals = append(it.Signals, templates.Badge{Label: sg.Label, Class: class, Title: sg.Detail})
		}
		if len(sigs) > 0 {
			it.Reason = sigs[0].Label + ": " + sg0Detail(sigs[0])
		}
		for _, m := range msgs[max(len(msgs)-watchRecent, 0):] {
			it.Recent = append(it.Recent, watchLine(p, m))
		}
		list = append(list, scored{item: it, score: it.Score, last: conv.LastMessageMS})
	}
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].score != list[j].score {
			return list[i].score > list[j].score
		}
		return list[i].last > list[j].last
	})
	out := make([]templates.WatchItem, len(list))
	for i := range list {
		out[i] = list[i].item
	}
	return out, nil
}

// botOwned: the thread is not Baton's and the bot (or, with the Primary
// not yet learnt, whoever Baton hears on standby) holds it.
func botOwned(p *baton.Page, conv *baton.Conversation) bool {
	if conv.Status == baton.StatusOpen || conv.Closing {
		return false
	}
	switch p.OwnerKindOf(conv.OwnerAppID) {
	case baton.OwnerBot:
		return true
	case baton.OwnerIdle:
		return p.PrimaryAppID == "" && conv.LastMessageMS > 0
	}
	return false
}

// sg0Detail shortens a signal's evidence for the request's reason, which
// the bot's developers read in the metadata.
func sg0Detail(s conversation.Signal) string {
	r := []rune(s.Detail)
	if len(r) > 120 {
		return string(r[:120]) + "…"
	}
	return s.Detail
}

// watchLine labels one message of the standby stream; before Baton learns
// the Primary's id the bot's echoes come from "another app", the bot.
func watchLine(p *baton.Page, m *baton.Message) templates.WatchLine {
	l := templates.WatchLine{Text: conversation.Preview(m)}
	switch m.Author {
	case baton.AuthorUser:
		l.Author, l.Class = "Person", "watch-line--user"
	case baton.AuthorBot:
		l.Author, l.Class = "Bot", "watch-line--bot"
	case baton.AuthorApp:
		l.Author, l.Class = "App", "watch-line--other"
		if p.PrimaryAppID == "" {
			l.Author, l.Class = "Bot", "watch-line--bot"
		}
	case baton.AuthorAgent:
		l.Author, l.Class = "Agent", "watch-line--agent"
	case baton.AuthorPageInbox:
		l.Author, l.Class = "Page Inbox", "watch-line--other"
	default:
		l.Author, l.Class = "App", "watch-line--other"
	}
	return l
}
