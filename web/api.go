package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
)

// The JSON API under /api/v1 authenticates each request with a personal
// token (Authorization: Bearer …) instead of a session cookie, so it needs
// no CSRF token: a browser never attaches the header by itself. Its
// actions go through the same conversation service as the console, with
// the same rules and the same audit lines.

// apiMaxBody bounds a request body; the longest field is a 2000-character
// reply.
const apiMaxBody = 64 << 10

// apiRoutes registers the API.
func (s *Server) apiRoutes() {
	s.handleMachine("GET /api/v1/conversations", s.api(s.apiListConversations))
	s.handleMachine("GET /api/v1/conversations/{id}", s.api(s.apiConversation))
	s.handleMachine("GET /api/v1/conversations/{id}/messages", s.api(s.apiMessages))
	s.handleMachine("POST /api/v1/conversations/{id}/messages", s.api(s.apiReply))
	s.handleMachine("POST /api/v1/conversations/{id}/done", s.api(s.apiDone))
	s.handleMachine("POST /api/v1/conversations/{id}/request", s.api(s.apiRequest))
	s.handleMachine("POST /api/v1/conversations/{id}/claim", s.api(s.apiClaim))
	s.handleMachine("POST /api/v1/conversations/{id}/assign", s.api(s.apiAssign))
	s.handleMachine("POST /api/v1/conversations/{id}/tags", s.api(s.apiAddTag))
	s.handleMachine("DELETE /api/v1/conversations/{id}/tags/{name}", s.api(s.apiRemoveTag))
	s.handleMachine("GET /api/v1/search", s.api(s.apiSearch))
}

// apiHandler answers with a value to encode, or an error to map.
type apiHandler func(r *http.Request, u *baton.User) (status int, body any, err error)

// api authenticates the bearer token, runs h and writes its JSON.
func (s *Server) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.apiUser(r)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, apiMaxBody)
		status, body, err := h(r, u)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, status, body)
	}
}

// apiUser authenticates the request's bearer token.
func (s *Server) apiUser(r *http.Request) (*baton.User, error) {
	tokens, err := service[baton.APITokenService](s)
	if err != nil {
		return nil, err
	}
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, baton.Errorf(baton.EUNAUTHORIZED, "Send a personal API token: Authorization: Bearer <token>.")
	}
	u, _, err := tokens.AuthenticateAPIToken(r.Context(), strings.TrimSpace(secret))
	if err != nil {
		return nil, err
	}
	if !u.Role.AtLeast(baton.RoleAgent) {
		return nil, baton.Errorf(baton.EFORBIDDEN, "This user may not use the console.")
	}
	return u, nil
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// APIError is the body of every API error: a stable code for programs and
// a message for people.
type APIError struct {
	Error APIErrorBody `json:"error"`
}

// APIErrorBody is APIError's content.
type APIErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *Server) apiError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	logError(s.log, r, status, err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="baton"`)
	}
	writeJSON(w, status, APIError{Error: APIErrorBody{Code: baton.ErrorCode(err), Message: baton.ErrorMessage(err)}})
}

// decodeJSON reads a JSON object body into v.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return baton.Errorf(baton.EINVALID, "Send the body as application/json.")
	}
	err := json.NewDecoder(r.Body).Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return baton.Errorf(baton.EINVALID, "The body is too large.")
	case errors.Is(err, io.EOF):
		return baton.Errorf(baton.EINVALID, "Send a JSON object.")
	case err != nil:
		return baton.Errorf(baton.EINVALID, "The body is not valid JSON for this call.")
	}
	return nil
}

// APIConversation is a conversation as the API shows it.
type APIConversation struct {
	ID              int64      `json:"id"`
	PageID          string     `json:"page_id"`
	PSID            string     `json:"psid"`
	Name            string     `json:"name"`
	FirstName       string     `json:"first_name"`
	LastName        string     `json:"last_name"`
	Status          string     `json:"status"`
	CloseReason     string     `json:"close_reason,omitempty"`
	OwnerAppID      string     `json:"owner_app_id"`
	Owner           string     `json:"owner"`
	AssignedUserID  *int64     `json:"assigned_user_id"`
	RequestedAt     *time.Time `json:"requested_at"`
	RequestReason   string     `json:"request_reason,omitempty"`
	Closing         bool       `json:"closing"`
	DoneOutcome     string     `json:"done_outcome,omitempty"`
	Unread          int        `json:"unread"`
	LastMessageText string     `json:"last_message_text"`
	LastMessageMS   int64      `json:"last_message_ms"`
	LastUserEventMS int64      `json:"last_user_event_ms"`
	OpenedAt        *time.Time `json:"opened_at"`
	ClosedAt        *time.Time `json:"closed_at"`
	Seq             int64      `json:"seq"`
}

// APIMessage is a message as the API shows it.
type APIMessage struct {
	ID          int64           `json:"id"`
	MID         string          `json:"mid"`
	Author      string          `json:"author"`
	AppID       string          `json:"app_id,omitempty"`
	Kind        string          `json:"kind"`
	Text        string          `json:"text"`
	Attachments json.RawMessage `json:"attachments,omitempty"`
	QuickReply  string          `json:"quick_reply,omitempty"`
	Part        string          `json:"part"`
	TimestampMS int64           `json:"timestamp_ms"`
	Reaction    string          `json:"reaction,omitempty"`
}

// APIOutboxItem is what an action queued.
type APIOutboxItem struct {
	ID             int64  `json:"id"`
	ConversationID int64  `json:"conversation_id"`
	Kind           string `json:"kind"`
	Status         string `json:"status"`
	Metadata       string `json:"metadata,omitempty"`
}

// apiConv is c as the API shows it; p (nil: unknown) classifies its owner.
func apiConv(p *baton.Page, c *baton.Conversation) APIConversation {
	out := APIConversation{ID: c.ID, PageID: c.PageID, PSID: c.PSID, Name: c.Name(), FirstName: c.FirstName, LastName: c.LastName,
		Status: string(c.Status), CloseReason: c.CloseReason, OwnerAppID: c.OwnerAppID, AssignedUserID: c.AssignedUserID,
		RequestedAt: c.RequestedAt, RequestReason: c.RequestReason, Closing: c.Closing, DoneOutcome: c.DoneOutcome,
		Unread: c.Unread, LastMessageText: c.LastMessageText, LastMessageMS: c.LastMessageMS, LastUserEventMS: c.LastUserEventMS,
		OpenedAt: c.OpenedAt, ClosedAt: c.ClosedAt, Seq: c.Seq, Owner: string(baton.OwnerUnknown)}
	if p != nil {
		out.Owner = string(p.OwnerKindOf(c.OwnerAppID))
	}
	return out
}

// apiPage is the connected Page, which classifies owners; nil (owners
// shown as unknown) when it cannot be read. Read once per request.
func (s *Server) apiPage(ctx context.Context) *baton.Page {
	if s.cfg.Console.Page == nil {
		return nil
	}
	p, err := s.cfg.Console.Page(ctx)
	if err != nil {
		return nil
	}
	return p
}

func apiItem(it *baton.OutboxItem) APIOutboxItem {
	return APIOutboxItem{ID: it.ID, ConversationID: it.ConversationID, Kind: it.Kind, Status: it.Status, Metadata: it.Metadata}
}

// apiConsole checks that the console is wired (it is, in cmd/baton).
func (s *Server) apiConsole() error {
	if s.cfg.Console.Store == nil || s.cfg.Console.Service == nil {
		return baton.Errorf(baton.EUNAVAILABLE, "The console is not configured.")
	}
	return nil
}

// apiLoad reads the {id} conversation with the console's visibility rule.
func (s *Server) apiLoad(r *http.Request, u *baton.User) (*baton.Conversation, error) {
	if err := s.apiConsole(); err != nil {
		return nil, err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil, baton.Errorf(baton.ENOTFOUND, "Conversation not found.")
	}
	c, err := s.cfg.Console.Store.Conversation(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if !s.cfg.Console.mayView(u, c) {
		return nil, baton.Errorf(baton.EFORBIDDEN, "The bot still owns this conversation; only supervisors can watch it.")
	}
	return c, nil
}

// apiListConversations: GET /api/v1/conversations?folder=&q=&limit=
func (s *Server) apiListConversations(r *http.Request, u *baton.User) (int, any, error) {
	if err := s.apiConsole(); err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	folder := baton.Folder(q.Get("folder"))
	if folder == "" {
		folder = baton.FolderInbox
	}
	if got := folderFor(string(folder), u, s.cfg.Console.mayWatchBot(u)); got != folder {
		return 0, nil, baton.Errorf(baton.EINVALID, "Unknown or forbidden folder %q: use inbox, mine, done (supervisors also bot, requested, all).", folder)
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	list, err := s.cfg.Console.Store.ListConversations(r.Context(), baton.ConversationFilter{Folder: folder, Search: q.Get("q"), UserID: u.ID, Limit: limit})
	if err != nil {
		return 0, nil, err
	}
	out := make([]APIConversation, 0, len(list))
	p := s.apiPage(r.Context())
	for _, c := range list {
		if s.cfg.Console.mayView(u, c) {
			out = append(out, apiConv(p, c))
		}
	}
	return http.StatusOK, map[string]any{"conversations": out}, nil
}

// apiConversation: GET /api/v1/conversations/{id}
func (s *Server) apiConversation(r *http.Request, u *baton.User) (int, any, error) {
	c, err := s.apiLoad(r, u)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"conversation": apiConv(s.apiPage(r.Context()), c)}, nil
}

// apiMessages: GET /api/v1/conversations/{id}/messages?before=&limit=
func (s *Server) apiMessages(r *http.Request, u *baton.User) (int, any, error) {
	c, err := s.apiLoad(r, u)
	if err != nil {
		return 0, nil, err
	}
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	ms, err := s.cfg.Console.Store.Messages(r.Context(), c.ID, before, limit)
	if err != nil {
		return 0, nil, err
	}
	out := make([]APIMessage, len(ms))
	for i, m := range ms {
		out[i] = APIMessage{ID: m.ID, MID: m.MID, Author: string(m.Author), AppID: m.AppID, Kind: m.Kind, Text: m.Text,
			Attachments: m.Attachments, QuickReply: m.QuickReply, Part: string(m.Part), TimestampMS: m.TimestampMS, Reaction: m.Reaction}
	}
	return http.StatusOK, map[string]any{"messages": out}, nil
}

// apiAudit writes the audit line of an API action.
func (s *Server) apiAudit(r *http.Request, u *baton.User, action string, c *baton.Conversation, detail map[string]any) {
	detail["via"] = "api"
	s.writeAudit(r.Context(), baton.AuditEntry{ActorID: &u.ID, Action: action,
		Subject: "conversation:" + strconv.FormatInt(c.ID, 10), Detail: detail})
}

// apiReply: POST /api/v1/conversations/{id}/messages {"text", "attachment_type", "attachment_url"}
func (s *Server) apiReply(r *http.Request, u *baton.User) (int, any, error) {
	c, err := s.apiLoad(r, u)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Text           string `json:"text"`
		AttachmentType string `json:"attachment_type"`
		AttachmentURL  string `json:"attachment_url"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return 0, nil, err
	}
	it, err := s.cfg.Console.Service.Reply(r.Context(), u, c.ID, in.Text, in.AttachmentType, in.AttachmentURL)
	if err != nil {
		return 0, nil, err
	}
	s.apiAudit(r, u, ActionReply, c, map[string]any{"length": len([]rune(strings.TrimSpace(in.Text))), "outbox_id": it.ID})
	return http.StatusAccepted, map[string]any{"outbox": apiItem(it)}, nil
}

// apiDone: POST /api/v1/conversations/{id}/done {"outcome", "note", "tags"}
func (s *Server) apiDone(r *http.Request, u *baton.User) (int, any, error) {
	c, err := s.apiLoad(r, u)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Outcome string   `json:"outcome"`
		Note    string   `json:"note"`
		Tags    []string `json:"tags"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return 0, nil, err
	}
	it, err := s.cfg.Console.Service.Done(r.Context(), u, c.ID, in.Outcome, in.Note, in.Tags)
	if err != nil {
		return 0, nil, err
	}
	s.apiAudit(r, u, ActionDone, c, map[string]any{"outcome": in.Outcome, "note": in.Note, "tags": in.Tags, "outbox_id": it.ID})
	return http.StatusAccepted, map[string]any{"outbox": apiItem(it)}, nil
}

// apiRequest: POST /api/v1/conversations/{id}/request {"reason"}
func (s *Server) apiRequest(r *http.Request, u *baton.User) (int, any, error) {
	c, err := s.apiLoad(r, u)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return 0, nil, err
	}
	it, err := s.cfg.Console.Service.RequestControl(r.Context(), u, c.ID, in.Reason)
	if err != nil {
		return 0, nil, err
	}
	s.apiAudit(r, u, ActionRequestControl, c, map[string]any{"reason": in.Reason, "outbox_id": it.ID})
	return http.StatusAccepted, map[string]any{"outbox": apiItem(it)}, nil
}

// APISearchHit is one search result; Snippet marks matches with
// baton.SnippetStart and baton.SnippetStop, Parts splits it for display.
type APISearchHit struct {
	ConversationID int64         `json:"conversation_id"`
	MessageID      int64         `json:"message_id"`
	Name           string        `json:"name"`
	Status         string        `json:"status"`
	TimestampMS    int64         `json:"timestamp_ms"`
	Rank           float64       `json:"rank"`
	Parts          []SnippetPart `json:"snippet"`
}

// SnippetPart is a run of a search snippet, a match or not: clients render
// the text escaped and highlight the matches themselves.
type SnippetPart struct {
	Text  string `json:"text"`
	Match bool   `json:"match,omitempty"`
}

// SplitSnippet cuts a snippet into runs at the match delimiters.
func SplitSnippet(s string) []SnippetPart {
	var out []SnippetPart
	for s != "" {
		i := strings.Index(s, baton.SnippetStart)
		if i < 0 {
			out = append(out, SnippetPart{Text: s})
			break
		}
		if i > 0 {
			out = append(out, SnippetPart{Text: s[:i]})
		}
		s = s[i+len(baton.SnippetStart):]
		j := strings.Index(s, baton.SnippetStop)
		if j < 0 {
			j = len(s)
		}
		out = append(out, SnippetPart{Text: s[:j], Match: true})
		s = strings.TrimPrefix(s[j:], baton.SnippetStop)
	}
	return out
}

// apiSearch: GET /api/v1/search?q= — full-text search over messages.
func (s *Server) apiSearch(r *http.Request, u *baton.User) (int, any, error) {
	search, err := service[baton.Searcher](s)
	if err != nil {
		return 0, nil, err
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	mayWatch := s.cfg.Console.Service != nil && s.cfg.Console.mayWatchBot(u)
	hits, err := search.SearchMessages(r.Context(), r.URL.Query().Get("q"), baton.SearchOptions{IncludeBot: mayWatch, Limit: limit})
	if err != nil {
		return 0, nil, err
	}
	out := make([]APISearchHit, len(hits))
	for i, h := range hits {
		out[i] = APISearchHit{ConversationID: h.ConversationID, MessageID: h.MessageID, Name: h.Name, Status: string(h.Status),
			TimestampMS: h.TimestampMS, Rank: h.Rank, Parts: SplitSnippet(h.Snippet)}
	}
	return http.StatusOK, map[string]any{"results": out}, nil
}

// viaAudit marks every audit line written through it with where the
// action came from, so that the Team service's own lines (claim, assign,
// tags) read "via": "api" like the API's other actions.
type viaAudit struct {
	log baton.AuditLog
	via string
}

func (a viaAudit) Audit(ctx context.Context, e baton.AuditEntry) error {
	detail := make(map[string]any, len(e.Detail)+1)
	for k, v := range e.Detail {
		detail[k] = v
	}
	detail["via"] = a.via
	e.Detail = detail
	return a.log.Audit(ctx, e)
}

// apiTeam is the console's Team service writing its audit lines as the
// API's: the same rules, the same actions, marked "via": "api".
func (s *Server) apiTeam() (*conversation.Team, error) {
	t, err := s.cfg.Console.team()
	if err != nil {
		return nil, err
	}
	api := *t
	if api.Audit != nil {
		api.Audit = viaAudit{log: t.Audit, via: "api"}
	}
	return &api, nil
}

// apiTeamAct loads the conversation (as reading it would), runs act with
// the API's Team service, and answers with the conversation as it is
// then.
func (s *Server) apiTeamAct(r *http.Request, u *baton.User, act func(t *conversation.Team, c *baton.Conversation) error) (int, any, error) {
	c, err := s.apiLoad(r, u)
	if err != nil {
		return 0, nil, err
	}
	t, err := s.apiTeam()
	if err != nil {
		return 0, nil, err
	}
	if err := act(t, c); err != nil {
		return 0, nil, err
	}
	return s.apiChanged(r, c.ID)
}

// apiChanged answers an assignment or tag action with the conversation
// as it is now, with its tags.
func (s *Server) apiChanged(r *http.Request, id int64) (int, any, error) {
	c, err := s.cfg.Console.Store.Conversation(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	tags, err := s.cfg.Console.TeamStore.TagsOf(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	names := make([]string, len(tags))
	for i, t := range tags {
		names[i] = t.Name
	}
	return http.StatusOK, map[string]any{"conversation": apiConv(s.apiPage(r.Context()), c), "tags": names}, nil
}

// apiClaim: POST /api/v1/conversations/{id}/claim — the token's user takes
// an open conversation nobody else has.
func (s *Server) apiClaim(r *http.Request, u *baton.User) (int, any, error) {
	return s.apiTeamAct(r, u, func(t *conversation.Team, c *baton.Conversation) error {
		return t.Claim(r.Context(), u, c.ID)
	})
}

// apiAssign: POST /api/v1/conversations/{id}/assign {"user_id": N} or
// {"email": "…"}; null, 0 or "" unassigns. Supervisors assign anyone; an
// agent may only release their own, as in the console.
func (s *Server) apiAssign(r *http.Request, u *baton.User) (int, any, error) {
	return s.apiTeamAct(r, u, func(t *conversation.Team, c *baton.Conversation) error {
		to, err := s.apiAssignee(r)
		if err != nil {
			return err
		}
		return t.Assign(r.Context(), u, c.ID, to)
	})
}

// apiAssignee reads the assign call's body: the user to assign to, or 0
// to unassign.
func (s *Server) apiAssignee(r *http.Request) (int64, error) {
	var in map[string]json.RawMessage
	if err := decodeJSON(r, &in); err != nil {
		return 0, err
	}
	rawID, hasID := in["user_id"]
	rawEmail, hasEmail := in["email"]
	var to int64
	switch {
	case hasID == hasEmail:
		return 0, baton.Errorf(baton.EINVALID, `Send {"user_id": N} or {"email": "…"} (null unassigns).`)
	case hasID:
		var id *int64
		if err := json.Unmarshal(rawID, &id); err != nil || (id != nil && *id < 0) {
			return 0, baton.Errorf(baton.EINVALID, "user_id is a user's id, or null to unassign.")
		}
		if id != nil {
			to = *id
		}
	default:
		var email *string
		if err := json.Unmarshal(rawEmail, &email); err != nil {
			return 0, baton.Errorf(baton.EINVALID, "email is a user's email, or null to unassign.")
		}
		if email != nil && strings.TrimSpace(*email) != "" {
			if s.cfg.Users == nil {
				return 0, baton.Errorf(baton.EUNAVAILABLE, "Users are not configured.")
			}
			target, err := s.cfg.Users.UserByEmail(r.Context(), strings.TrimSpace(*email))
			if baton.ErrorCode(err) == baton.ENOTFOUND {
				return 0, baton.Errorf(baton.EINVALID, "Pick an enabled user to assign to.")
			}
			if err != nil {
				return 0, err
			}
			to = target.ID
		}
	}
	return to, nil
}

// apiAddTag: POST /api/v1/conversations/{id}/tags {"name": "…"} — applies
// a tag, creating it when new.
func (s *Server) apiAddTag(r *http.Request, u *baton.User) (int, any, error) {
	return s.apiTeamAct(r, u, func(t *conversation.Team, c *baton.Conversation) error {
		var in struct {
			Name string `json:"name"`
		}
		if err := decodeJSON(r, &in); err != nil {
			return err
		}
		return t.AddTag(r.Context(), u, c.ID, in.Name)
	})
}

// apiRemoveTag: DELETE /api/v1/conversations/{id}/tags/{name} (the name
// URL-escaped).
func (s *Server) apiRemoveTag(r *http.Request, u *baton.User) (int, any, error) {
	return s.apiTeamAct(r, u, func(t *conversation.Team, c *baton.Conversation) error {
		return t.RemoveTag(r.Context(), u, c.ID, r.PathValue("name"))
	})
}
