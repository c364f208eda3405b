package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
	"github.com/baton-chat/baton/templates"
)

// renderComponent writes a templ component as a complete response.
func (s *Server) renderComponent(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil {
		s.log.WarnContext(r.Context(), "render failed", "path", r.URL.Path, "err", err)
	}
}

// showInbox renders the inbox; with ?fragment=list only the list panel
// (tabs with counts, tools, list), which live updates fetch to re-render
// it with the same component.
func (s *Server) showInbox(w http.ResponseWriter, r *http.Request) {
	s.renderInbox(w, r, nil)
}

var sortLabels = []templates.Option{
	{Value: baton.SortNewest, Label: "Newest"},
	{Value: baton.SortWaiting, Label: "Oldest waiting"},
	{Value: baton.SortWindow, Label: "Window closing soonest"},
}

func sortFor(v string) string {
	for _, o := range sortLabels {
		if o.Value == v {
			return v
		}
	}
	return baton.SortNewest
}

// windowCutoffMS: a last user event at or before it means the window is
// closed now (7 days with the human agent tag, else 24 hours).
func (c *Console) windowCutoffMS() int64 {
	d := 24 * time.Hour
	if c.Service.HumanAgent != nil && c.Service.HumanAgent() {
		d = 7 * 24 * time.Hour
	}
	return c.now().Add(-d).UnixMilli()
}

func (s *Server) renderInbox(w http.ResponseWriter, r *http.Request, open *baton.Conversation) {
	cons := &s.cfg.Console
	u := s.currentUser(r)
	ctx := r.Context()
	watch := cons.mayWatchBot(u)
	q := r.URL.Query()
	folder := folderFor(q.Get("folder"), u, watch)
	search := q.Get("q")
	sort := sortFor(q.Get("sort"))
	tag, _ := conversation.TagName(q.Get("tag"))
	if q.Get("fragment") != "list" {
		cons.touch(ctx, u, s)
	}
	p, err := cons.Page(ctx)
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	convs, err := cons.Store.ListConversations(ctx, baton.ConversationFilter{Folder: folder, Search: search, UserID: u.ID,
		Sort: sort, Tag: tag, WindowCutoffMS: cons.windowCutoffMS()})
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	var selected int64
	if open != nil {
		selected = open.ID
	} else if id, err := strconv.ParseInt(q.Get("selected"), 10, 64); err == nil {
		selected = id
	}
	page := s.pageData(r, "Inbox", "inbox")
	panel, err := cons.listPanel(ctx, u, p, convs, selected, folder, search, sort, tag, watch, page.CSRFToken)
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	if q.Get("fragment") == "list" {
		s.renderComponent(w, r, http.StatusOK, templates.ListPanel(panel))
		return
	}
	props := templates.InboxProps{Page: page, Folder: string(folder), Search: search, List: panel}
	if open != nil {
		cp, err := cons.conversationProps(ctx, u, p, open, page.CSRFToken)
		if err != nil {
			s.writeTextError(w, r, err)
			return
		}
		props.Conversation = cp
		props.Page.Title = open.Name()
	}
	s.renderComponent(w, r, http.StatusOK, templates.Inbox(props))
}

// touch records the viewer's activity for "away after idle"; a failure
// only costs an early "away", so it is logged, not shown.
func (c *Console) touch(ctx context.Context, u *baton.User, s *Server) {
	if c.Team == nil || u == nil {
		return
	}
	if err := c.Team.Touch(ctx, u); err != nil {
		s.log.WarnContext(ctx, "record agent activity", "user_id", u.ID, "err", err)
	}
}

// listPanel builds the live part of the inbox column.
func (c *Console) listPanel(ctx context.Context, u *baton.User, p *baton.Page, convs []*baton.Conversation, selected int64,
	folder baton.Folder, search, sort, tag string, watch bool, csrf string) (templates.ListPanelProps, error) {
	extra := url.Values{}
	if search != "" {
		extra.Set("q", search)
	}
	if sort != baton.SortNewest {
		extra.Set("sort", sort)
	}
	if tag != "" {
		extra.Set("tag", tag)
	}
	panel := templates.ListPanelProps{Folder: string(folder), Search: search, Sort: sort, Tag: tag, CSRFToken: csrf,
		TeamLink: c.Team != nil && u.Role.AtLeast(baton.RoleSupervisor)}
	for _, o := range sortLabels {
		o.Selected = o.Value == sort
		panel.Sorts = append(panel.Sorts, o)
	}
	var counts, unread baton.FolderCounts
	var agents []*baton.Agent
	extras := map[int64]*baton.ListExtra{}
	if c.TeamStore != nil {
		var err error
		if counts, unread, err = c.TeamStore.CountConversations(ctx, u.ID); err != nil {
			return panel, err
		}
		tags, err := c.TeamStore.Tags(ctx)
		if err != nil {
			return panel, err
		}
		for _, t := range tags {
			panel.Tags = append(panel.Tags, templates.Option{Value: t.Name, Label: t.Name, Selected: t.Name == tag})
		}
		ids := make([]int64, len(convs))
		for i, conv := range convs {
			ids[i] = conv.ID
		}
		if extras, err = c.TeamStore.ListExtras(ctx, ids); err != nil {
			return panel, err
		}
	}
	if c.Team != nil {
		var err error
		if agents, err = c.Team.Agents(ctx); err != nil {
			return panel, err
		}
	}
	panel.Folders = folderLinks(folder, extra, watch, counts, unread)
	panel.Me = templates.AgentRow{ID: u.ID, Name: u.Name, Status: string(baton.AgentOffline), Cap: conversation.DefaultAgentCap}
	for _, a := range agents {
		if a.UserID == u.ID {
			panel.Me = c.agentRow(a)
		}
	}
	if panel.Me.Options == nil {
		panel.Me.Options = statusOptions(baton.AgentOffline)
	}
	panel.Items = c.listItems(p, convs, selected, folder, extra, agents, extras)
	return panel, nil
}

func statusOptions(current baton.AgentStatus) []templates.Option {
	out := make([]templates.Option, len(baton.AgentStatuses))
	for i, st := range baton.AgentStatuses {
		out[i] = templates.Option{Value: string(st), Label: statusLabel(st), Selected: st == current}
	}
	return out
}

func statusLabel(st baton.AgentStatus) string {
	switch st {
	case baton.AgentOnline:
		return "Online"
	case baton.AgentAway:
		return "Away"
	}
	return "Offline"
}

func (c *Console) agentRow(a *baton.Agent) templates.AgentRow {
	row := templates.AgentRow{ID: a.UserID, Name: a.Name, Handle: conversation.MentionHandle(a), Status: string(a.Status),
		Load: a.Open, Cap: c.Team.CapOf(a), Options: statusOptions(a.Status)}
	if a.Cap != nil {
		row.OwnCap = strconv.Itoa(*a.Cap)
	}
	return row
}
