package web

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/baton-chat/baton/internal/baton"
)

// isFetch reports whether the console's script sent the request (it sets
// X-Requested-With), so the answer is JSON rather than a redirect.
func isFetch(r *http.Request) bool { return r.Header.Get("X-Requested-With") == "fetch" }

// finishAction answers a state-changing action: JSON for the script, a
// redirect back (POST/redirect/GET) for a plain form.
func (s *Server) finishAction(w http.ResponseWriter, r *http.Request, back string, err error, extra map[string]any) {
	if isFetch(r) {
		body := map[string]any{"ok": err == nil}
		for k, v := range extra {
			body[k] = v
		}
		status := http.StatusOK
		if err != nil {
			status = statusOf(err)
			logError(s.log, r, status, err)
			body["error"] = baton.ErrorMessage(err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
		return
	}
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func conversationURL(id int64) string { return "/conversations/" + strconv.FormatInt(id, 10) }

// sendReply queues an agent's message in the durable outbox.
func (s *Server) sendReply(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	_, err := s.cfg.Console.Service.Reply(r.Context(), s.currentUser(r), conv.ID,
		r.PostFormValue("text"), r.PostFormValue("attachment_type"), r.PostFormValue("attachment_url"))
	if err == nil {
		// Replying is using the console: the agent is not idle.
		s.cfg.Console.touch(r.Context(), s.currentUser(r), s)
	}
	s.finishAction(w, r, conversationURL(conv.ID), err, nil)
}

// retryOutbox puts a failed message or hand-back back in the queue.
func (s *Server) retryOutbox(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.finishAction(w, r, "/", baton.Errorf(baton.ENOTFOUND, "Nothing to retry."), nil)
		return
	}
	it, err := s.cfg.Console.Service.Retry(r.Context(), s.currentUser(r), id)
	back := "/"
	if it != nil {
		back = conversationURL(it.ConversationID)
	}
	s.finishAction(w, r, back, err, nil)
}

// sendTyping shows the person a typing indicator (the script throttles it).
func (s *Server) sendTyping(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	err := s.cfg.Console.Service.Typing(r.Context(), s.currentUser(r), conv.ID)
	s.finishAction(w, r, conversationURL(conv.ID), err, nil)
}

func formTags(r *http.Request) []string {
	return strings.Split(r.PostFormValue("tags"), ",")
}

// markDone hands the thread back to the bot with the chosen outcome.
func (s *Server) markDone(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	_, err := s.cfg.Console.Service.Done(r.Context(), s.currentUser(r), conv.ID,
		r.PostFormValue("outcome"), r.PostFormValue("note"), formTags(r))
	s.finishAction(w, r, conversationURL(conv.ID), err, nil)
}

// previewDone answers the exact metadata Done would send for the form's
// current values, so the agent sees what the bot will receive.
func (s *Server) previewDone(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	md := s.cfg.Console.Service.DonePreview(conv, s.currentUser(r), r.PostFormValue("outcome"), r.PostFormValue("note"), formTags(r))
	s.finishAction(w, r, conversationURL(conv.ID), nil, map[string]any{"metadata": prettyJSON(md), "bytes": len(md)})
}

// requestControl asks the bot for a thread it owns.
func (s *Server) requestControl(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	_, err := s.cfg.Console.Service.RequestControl(r.Context(), s.currentUser(r), conv.ID, r.PostFormValue("reason"))
	s.finishAction(w, r, conversationURL(conv.ID), err, nil)
}

// abandonRequest stops waiting for a request the bot did not answer.
func (s *Server) abandonRequest(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	err := s.cfg.Console.Service.AbandonRequest(r.Context(), s.currentUser(r), conv.ID)
	s.finishAction(w, r, conversationURL(conv.ID), err, nil)
}
