package web

import (
	"net/http"
	"strconv"

	"github.com/a-h/templ"
	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

// renderComponent writes a templ component as a complete response.
func (s *Server) renderComponent(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil {
		s.log.Warn("render failed", "path", r.URL.Path, "err", err)
	}
}

// showInbox renders the inbox; with ?fragment=list only the list, which
// live updates fetch to re-render it with the same component.
func (s *Server) showInbox(w http.ResponseWriter, r *http.Request) {
	s.renderInbox(w, r, nil)
}

func (s *Server) renderInbox(w http.ResponseWriter, r *http.Request, open *baton.Conversation) {
	cons := &s.cfg.Console
	u := s.currentUser(r)
	ctx := r.Context()
	watch := cons.mayWatchBot(u)
	folder := folderFor(r.URL.Query().Get("folder"), u, watch)
	search := r.URL.Query().Get("q")
	p, err := cons.Page(ctx)
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	convs, err := cons.Store.ListConversations(ctx, baton.ConversationFilter{Folder: folder, Search: search, UserID: u.ID})
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	var selected int64
	if open != nil {
		selected = open.ID
	} else if id, err := strconv.ParseInt(r.URL.Query().Get("selected"), 10, 64); err == nil {
		selected = id
	}
	items := cons.listItems(p, convs, selected, folder)
	if r.URL.Query().Get("fragment") == "list" {
		s.renderComponent(w, r, http.StatusOK, templates.ConversationList(items, string(folder)))
		return
	}
	page := s.pageData(r, "Inbox", "inbox")
	props := templates.InboxProps{Page: page, Folder: string(folder), Folders: folderLinks(folder, search, watch), Search: search, Items: items}
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
