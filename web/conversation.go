package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

// loadConversation reads the {id} conversation and checks that the user
// may see it (agents: those handed to Baton; supervisors: all).
func (s *Server) loadConversation(w http.ResponseWriter, r *http.Request) (*baton.Conversation, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeTextError(w, r, baton.Errorf(baton.ENOTFOUND, "Conversation not found."))
		return nil, false
	}
	conv, err := s.cfg.Console.Store.Conversation(r.Context(), id)
	if err != nil {
		s.writeTextError(w, r, err)
		return nil, false
	}
	if !s.cfg.Console.mayView(s.currentUser(r), conv) {
		s.writeTextError(w, r, baton.Errorf(baton.EFORBIDDEN, "The bot still owns this conversation; only supervisors can watch it."))
		return nil, false
	}
	return conv, true
}

// showConversation renders the inbox with a conversation open. With
// ?fragment=live it renders only the parts live updates replace.
func (s *Server) showConversation(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	cons := &s.cfg.Console
	u := s.currentUser(r)
	if err := cons.Service.MarkRead(r.Context(), u, conv); err != nil {
		s.log.WarnContext(r.Context(), "mark read failed", "conversation", conv.ID, "err", err)
	} else {
		conv.Unread = 0
	}
	if cons.TeamStore != nil {
		// Opening the conversation is reading the note: the mention is seen.
		if err := cons.TeamStore.SeeMentions(r.Context(), u.ID, conv.ID, cons.now()); err != nil {
			s.log.WarnContext(r.Context(), "mark mentions seen failed", "conversation", conv.ID, "err", err)
		}
	}
	if r.URL.Query().Get("fragment") == "live" {
		p, err := cons.Page(r.Context())
		if err != nil {
			s.writeTextError(w, r, err)
			return
		}
		cp, err := cons.conversationProps(r.Context(), u, p, conv, s.pageData(r, "", "").CSRFToken)
		if err != nil {
			s.writeTextError(w, r, err)
			return
		}
		s.renderComponent(w, r, http.StatusOK, templates.LiveConversation(*cp))
		return
	}
	s.renderInbox(w, r, conv)
}

// showOlder renders an earlier page of messages (backwards pagination).
func (s *Server) showOlder(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	cons := &s.cfg.Console
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	p, err := cons.Page(r.Context())
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	msgs, err := cons.Store.Messages(r.Context(), conv.ID, before, 100)
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	cp := templates.ConversationProps{ID: conv.ID, Name: conv.Name(), Entries: cons.entries(p, conv, msgs, nil)}
	if len(msgs) == 100 {
		cp.OlderHref = "/conversations/" + strconv.FormatInt(conv.ID, 10) + "/older?before=" + strconv.FormatInt(msgs[0].ID, 10)
	}
	s.renderComponent(w, r, http.StatusOK, templates.OlderMessages(cp))
}

// markViewing is the open tab's heartbeat (static/app.js, every 15 s):
// other agents see "Ana is viewing". A new viewer is announced so the
// others' headers update at once; renewals are not.
func (s *Server) markViewing(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	cons := &s.cfg.Console
	if cons.Presence == nil {
		s.finishAction(w, r, conversationURL(conv.ID), nil, nil)
		return
	}
	isNew, err := cons.Presence.MarkViewing(r.Context(), conv.ID, s.currentUser(r).ID, time.Now(), viewerFresh)
	if err == nil && isNew && cons.Announce != nil {
		cons.Announce(conv.ID)
	}
	s.finishAction(w, r, conversationURL(conv.ID), err, nil)
}
