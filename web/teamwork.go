package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
	"github.com/baton-chat/baton/templates"
)

// teamRoutes registers assignment, status, tags, notes, the team page and
// canned replies. Each action is audited by conversation.Team (or the
// canned handlers), listed in AuditExempt with that reason.
func (s *Server) teamRoutes() {
	s.handle("POST /conversations/{id}/claim", baton.RoleAgent, s.claimConversation)
	s.handle("POST /conversations/{id}/assign", baton.RoleAgent, s.assignConversation)
	s.handle("POST /conversations/{id}/tags", baton.RoleAgent, s.addTag)
	s.handle("POST /conversations/{id}/tags/remove", baton.RoleAgent, s.removeTag)
	s.handle("POST /conversations/{id}/notes", baton.RoleAgent, s.addNote)
	s.handle("POST /agents/{id}/status", baton.RoleAgent, s.setAgentStatus)
	s.handle("POST /agents/{id}/cap", baton.RoleSupervisor, s.setAgentCap)
	s.handle("GET /team", baton.RoleSupervisor, s.showTeam)
	s.handle("GET /canned", baton.RoleSupervisor, s.showCanned)
	s.handle("POST /canned", baton.RoleSupervisor, s.saveCanned)
	s.handle("POST /canned/{id}/delete", baton.RoleSupervisor, s.deleteCanned)
}

// team returns the team service, or an error when it is not configured.
func (c *Console) team() (*conversation.Team, error) {
	if c.Team == nil || c.TeamStore == nil {
		return nil, baton.Errorf(baton.EUNAVAILABLE, "Team features are not configured.")
	}
	return c.Team, nil
}

func (s *Server) claimConversation(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	t, err := s.cfg.Console.team()
	if err == nil {
		err = t.Claim(r.Context(), s.currentUser(r), conv.ID)
	}
	s.finishAction(w, r, conversationURL(conv.ID), err, nil)
}

func (s *Server) assignConversation(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	t, err := s.cfg.Console.team()
	if err == nil {
		to, perr := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("user_id")), 10, 64)
		if perr != nil || to < 0 {
			err = baton.Errorf(baton.EINVALID, "Pick someone to assign to.")
		} else {
			err = t.Assign(r.Context(), s.currentUser(r), conv.ID, to)
		}
	}
	s.finishAction(w, r, conversationURL(conv.ID), err, nil)
}

func (s *Server) addTag(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	t, err := s.cfg.Console.team()
	if err == nil {
		err = t.AddTag(r.Context(), s.currentUser(r), conv.ID, r.PostFormValue("tag"))
	}
	s.finishAction(w, r, conversationURL(conv.ID), err, nil)
}

func (s *Server) removeTag(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	t, err := s.cfg.Console.team()
	if err == nil {
		err = t.RemoveTag(r.Context(), s.currentUser(r), conv.ID, r.PostFormValue("tag"))
	}
	s.finishAction(w, r, conversationURL(conv.ID), err, nil)
}

func (s *Server) addNote(w http.ResponseWriter, r *http.Request) {
	conv, ok := s.loadConversation(w, r)
	if !ok {
		return
	}
	t, err := s.cfg.Console.team()
	if err == nil {
		_, err = t.AddNote(r.Context(), s.currentUser(r), conv.ID, r.PostFormValue("text"))
	}
	s.finishAction(w, r, conversationURL(conv.ID), err, nil)
}

// backTo is where a plain form returns: the page it came from when that
// is this site's (as safeNext judges a sign-in's next), else fallback.
func backTo(r *http.Request, fallback string) string {
	if b := r.PostFormValue("back"); b != "" && safeNext(b) == b {
		return b
	}
	return fallback
}

func (s *Server) setAgentStatus(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil {
		var t *conversation.Team
		if t, err = s.cfg.Console.team(); err == nil {
			err = t.SetStatus(r.Context(), s.currentUser(r), id, r.PostFormValue("status"))
		}
	}
	s.finishAction(w, r, backTo(r, "/"), err, nil)
}

func (s *Server) setAgentCap(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil {
		var t *conversation.Team
		if t, err = s.cfg.Console.team(); err == nil {
			err = t.SetCap(r.Context(), s.currentUser(r), id, r.PostFormValue("cap"))
		}
	}
	s.finishAction(w, r, backTo(r, "/team"), err, nil)
}

// showTeam lists the team with status and load; supervisors set status
// and caps here.
func (s *Server) showTeam(w http.ResponseWriter, r *http.Request) {
	cons := &s.cfg.Console
	t, err := cons.team()
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	agents, err := t.Agents(r.Context())
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	page := s.pageData(r, "Team", "team")
	props := templates.TeamPageProps{Page: page, DefaultCap: t.CapOf(&baton.Agent{})}
	for _, a := range agents {
		props.Agents = append(props.Agents, cons.agentRow(a))
	}
	s.renderComponent(w, r, http.StatusOK, templates.TeamPage(props))
}

func (s *Server) showCanned(w http.ResponseWriter, r *http.Request) {
	s.renderCanned(w, r, http.StatusOK, "")
}

func (s *Server) renderCanned(w http.ResponseWriter, r *http.Request, status int, msg string) {
	store := s.cfg.Console.TeamStore
	if store == nil {
		s.writeTextError(w, r, baton.Errorf(baton.EUNAVAILABLE, "Team features are not configured."))
		return
	}
	list, err := store.CannedReplies(r.Context())
	if err != nil {
		s.writeTextError(w, r, err)
		return
	}
	props := templates.CannedPageProps{Page: s.pageData(r, "Canned replies", "canned"), Error: msg}
	for _, c := range list {
		props.Replies = append(props.Replies, templates.CannedRow{ID: c.ID, Shortcut: c.Shortcut, Body: c.Body})
	}
	s.renderComponent(w, r, status, templates.CannedPage(props))
}

// cannedShortcut cleans a shortcut: one word, no leading slash.
func cannedShortcut(v string) (string, error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "/")
	if v == "" || len(v) > 40 || strings.ContainsAny(v, " \t\r\n/") {
		return "", baton.Errorf(baton.EINVALID, "A shortcut is one word of at most 40 characters, like “refund”.")
	}
	return v, nil
}

func (s *Server) saveCanned(w http.ResponseWriter, r *http.Request) {
	store := s.cfg.Console.TeamStore
	u := s.currentUser(r)
	if store == nil {
		s.finishAction(w, r, "/canned", baton.Errorf(baton.EUNAVAILABLE, "Team features are not configured."), nil)
		return
	}
	short, err := cannedShortcut(r.PostFormValue("shortcut"))
	body := strings.TrimSpace(r.PostFormValue("body"))
	if err == nil && (body == "" || len([]rune(body)) > conversation.MaxTextLength) {
		err = baton.Errorf(baton.EINVALID, "Write the reply (at most %d characters).", conversation.MaxTextLength)
	}
	c := &baton.CannedReply{Shortcut: short, Body: body, CreatedBy: &u.ID}
	if v := r.PostFormValue("id"); v != "" && err == nil {
		if c.ID, err = strconv.ParseInt(v, 10, 64); err != nil {
			err = baton.Errorf(baton.ENOTFOUND, "Canned reply not found.")
		}
	}
	if err == nil {
		err = store.SaveCannedReply(r.Context(), c)
	}
	if err == nil {
		s.writeAudit(r.Context(), baton.AuditEntry{ActorID: &u.ID, Action: "canned.save", Subject: "canned:" + strconv.FormatInt(c.ID, 10),
			Detail: map[string]any{"shortcut": short}})
	}
	if err != nil && !isFetch(r) {
		s.renderCanned(w, r, statusOf(err), baton.ErrorMessage(err))
		return
	}
	s.finishAction(w, r, "/canned", err, nil)
}

func (s *Server) deleteCanned(w http.ResponseWriter, r *http.Request) {
	store := s.cfg.Console.TeamStore
	id, err := pathID(r)
	if err == nil && store == nil {
		err = baton.Errorf(baton.EUNAVAILABLE, "Team features are not configured.")
	}
	if err == nil {
		err = store.DeleteCannedReply(r.Context(), id)
	}
	if err == nil {
		u := s.currentUser(r)
		s.writeAudit(r.Context(), baton.AuditEntry{ActorID: &u.ID, Action: "canned.delete", Subject: "canned:" + strconv.FormatInt(id, 10)})
	}
	s.finishAction(w, r, "/canned", err, nil)
}

// contactProps is the contact panel: the profile and the outcomes of
// earlier hand-backs, read from the ownership timeline (Baton keeps one
// conversation per person, so the past lives there).
func (c *Console) contactProps(conv *baton.Conversation, hos []*baton.Handover) templates.ContactProps {
	cp := templates.ContactProps{Name: conv.Name(), Pic: conv.ProfilePic, Initials: initials(conv.Name()), PSID: conv.PSID}
	if !conv.CreatedAt.IsZero() {
		cp.FirstSeen = conv.CreatedAt.In(c.loc()).Format("Jan 2, 2006 15:04")
	}
	for i := len(hos) - 1; i >= 0; i-- {
		h := hos[i]
		var o templates.PastOutcome
		switch h.Kind {
		case "done", "idle_return":
			var md struct {
				Outcome string `json:"outcome"`
				Note    string `json:"note"`
			}
			_ = json.Unmarshal([]byte(h.Metadata), &md)
			o = templates.PastOutcome{Outcome: md.Outcome, Note: md.Note}
			if o.Outcome == "" {
				o.Outcome = "done"
			}
		case "take":
			o.Outcome = "taken back by the bot"
		default:
			continue
		}
		o.Time = time.UnixMilli(h.TimestampMS).In(c.loc()).Format("Jan 2, 15:04")
		cp.Outcomes = append(cp.Outcomes, o)
	}
	return cp
}

// teamProps adds assignment, tags, notes, canned replies and the idle
// warning to an open conversation's view.
func (c *Console) teamProps(ctx context.Context, u *baton.User, conv *baton.Conversation, cp *templates.ConversationProps, csrf string) error {
	if c.IdleWarning != nil && conv.Status == baton.StatusOpen {
		w, err := c.IdleWarning(ctx, conv.ID)
		if err != nil {
			return err
		}
		if w.Warn {
			cp.IdleWarning = w.Text
		}
	}
	if c.Team == nil || c.TeamStore == nil {
		return nil
	}
	agents, err := c.Team.Agents(ctx)
	if err != nil {
		return err
	}
	supervisor := u.Role.AtLeast(baton.RoleSupervisor)
	open := conv.Status == baton.StatusOpen
	a := templates.AssignProps{ConversationID: conv.ID, CSRFToken: csrf}
	for _, ag := range agents {
		if conv.AssignedUserID != nil && *conv.AssignedUserID == ag.UserID {
			a.Assignee = ag.Name
		}
		label := ag.Name + " · " + statusLabel(ag.Status) + " · " + strconv.Itoa(ag.Open) + "/" + strconv.Itoa(c.Team.CapOf(ag))
		a.Agents = append(a.Agents, templates.Option{Value: strconv.FormatInt(ag.UserID, 10), Label: label,
			Selected: conv.AssignedUserID != nil && *conv.AssignedUserID == ag.UserID})
	}
	a.Mine = conv.AssignedUserID != nil && *conv.AssignedUserID == u.ID
	if open {
		a.CanClaim = conv.AssignedUserID == nil
		a.CanRelease = a.Mine
		a.CanAssign = supervisor
	}
	if !open {
		a.Assignee = ""
	}
	cp.Assign = a

	tags, err := c.TeamStore.TagsOf(ctx, conv.ID)
	if err != nil {
		return err
	}
	known, err := c.TeamStore.Tags(ctx)
	if err != nil {
		return err
	}
	cp.Tags = templates.TagsProps{ConversationID: conv.ID, CSRFToken: csrf}
	for _, t := range tags {
		cp.Tags.Tags = append(cp.Tags.Tags, t.Name)
	}
	for _, t := range known {
		cp.Tags.Known = append(cp.Tags.Known, t.Name)
	}

	notes, err := c.TeamStore.Notes(ctx, conv.ID)
	if err != nil {
		return err
	}
	cp.Entries = c.mergeNotes(cp.Entries, notes, u, agents)
	cp.Composer.CanNote = true

	if cp.Composer.CanReply {
		canned, err := c.TeamStore.CannedReplies(ctx)
		if err != nil {
			return err
		}
		for _, r := range canned {
			cp.Composer.Canned = append(cp.Composer.Canned, templates.CannedOption{Shortcut: r.Shortcut,
				Text: conversation.ExpandCanned(r.Body, conv.FirstName, u.Name)})
		}
		cp.Composer.State += "|" + strconv.Itoa(len(canned))
	}
	return nil
}

// mergeNotes places notes among the thread's entries by time.
func (c *Console) mergeNotes(entries []templates.Entry, notes []*baton.Note, u *baton.User, agents []*baton.Agent) []templates.Entry {
	if len(notes) == 0 {
		return entries
	}
	out := make([]templates.Entry, 0, len(entries)+len(notes))
	ni := 0
	for _, e := range entries {
		for ni < len(notes) && notes[ni].CreatedAt.UnixMilli() < e.At {
			out = append(out, c.noteEntry(notes[ni], u, agents))
			ni++
		}
		out = append(out, e)
	}
	for ; ni < len(notes); ni++ {
		out = append(out, c.noteEntry(notes[ni], u, agents))
	}
	return out
}

func (c *Console) noteEntry(n *baton.Note, u *baton.User, agents []*baton.Agent) templates.Entry {
	t, _ := c.shortTime(n.CreatedAt.UnixMilli())
	v := &templates.NoteView{ID: n.ID, Author: n.AuthorName, Time: t}
	if v.Author == "" {
		v.Author = "a former user"
	}
	handles := map[string]bool{}
	for _, a := range agents {
		for _, id := range n.Mentions {
			if a.UserID == id {
				handles[conversation.MentionHandle(a)] = true
			}
		}
	}
	for _, id := range n.Mentions {
		v.MentionsMe = v.MentionsMe || id == u.ID
	}
	v.Parts = noteParts(n.Text, handles)
	return templates.Entry{Note: v, At: n.CreatedAt.UnixMilli()}
}

// noteParts splits a note into text and the @mentions of known handles,
// so the template highlights them (and escapes everything).
func noteParts(text string, handles map[string]bool) []templates.NotePart {
	var out []templates.NotePart
	last := 0
	for _, m := range conversation.MentionSpans(text) {
		word := strings.ToLower(strings.TrimRight(text[m[0]+1:m[1]], "._-"))
		if !handles[word] {
			continue
		}
		if m[0] > last {
			out = append(out, templates.NotePart{Text: text[last:m[0]]})
		}
		out = append(out, templates.NotePart{Text: text[m[0]:m[1]], Mention: true})
		last = m[1]
	}
	if last < len(text) {
		out = append(out, templates.NotePart{Text: text[last:]})
	}
	return out
}
