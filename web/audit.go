package web

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

// Audit actions of the console's own routes. Each state-changing console
// route names the action it writes (auditedRoutes), so the audit log
// cannot silently miss one: a test walks Routes() and fails for a route
// that neither writes a line nor says why it need not.
const (
	ActionReply          = "reply"
	ActionDone           = "done"
	ActionRequestControl = "request_control"
	ActionAbandonRequest = "abandon_request"
	ActionRetry          = "retry"
	ActionSignOut        = "sign_out"
	ActionTokenCreate    = "api_token.create"
	ActionTokenRevoke    = "api_token.revoke"
)

// auditedRoute says which audit line a route writes after it succeeded:
// the action, the subject kind of its {id}, and the form fields worth
// keeping (never a password, never a message's text).
type auditedRoute struct {
	action  string
	subject string // "conversation", "outbox", "user" or "" for none
	fields  []string
}

// auditedRoutes are the routes whose successful requests the audit
// middleware records; routes audited by the service they call (accounts,
// Page settings) or that change nothing worth recording are listed in
// AuditExempt instead.
var auditedRoutes = map[string]auditedRoute{
	"POST /conversations/{id}/messages":        {ActionReply, "conversation", []string{"attachment_type"}},
	"POST /conversations/{id}/done":            {ActionDone, "conversation", []string{"outcome", "note", "tags"}},
	"POST /conversations/{id}/request":         {ActionRequestControl, "conversation", []string{"reason"}},
	"POST /conversations/{id}/request/abandon": {ActionAbandonRequest, "conversation", nil},
	"POST /outbox/{id}/retry":                  {ActionRetry, "outbox", nil},
	"POST /logout":                             {ActionSignOut, "", nil},
}

// AuditExempt lists the state-changing routes the audit middleware does
// not record, each with the reason, so the completeness test can tell an
// oversight from a decision.
var AuditExempt = map[string]string{
	"POST /login":                           "sign-ins are recorded in login_attempts, failures included",
	"POST /conversations/{id}/viewing":      "presence heartbeat: changes nothing but who is shown viewing",
	"POST /logout/everywhere":               "audited by the account service (user.sign_out_everywhere)",
	"POST /admin/users":                     "audited by the account service (user.create)",
	"POST /admin/users/{id}/role":           "audited by the account service (user.role)",
	"POST /admin/users/{id}/disable":        "audited by the account service (user.disable)",
	"POST /admin/users/{id}/enable":         "audited by the account service (user.enable)",
	"POST /admin/users/{id}/signout":        "audited by the account service (user.sign_out_everywhere)",
	"POST /admin/page":                      "audited by the settings handler (page.settings)",
	"POST /conversations/{id}/typing":       "a typing indicator changes no state",
	"POST /conversations/{id}/done/preview": "a preview changes nothing",
	"POST /account/tokens":                  "audited by the handler (api_token.create), with the token's id",
	"POST /account/tokens/{id}/revoke":      "audited by the handler (api_token.revoke)",
	"POST /conversations/{id}/claim":        "audited by conversation.Team (conversation.claim), with the previous assignee",
	"POST /conversations/{id}/assign":       "audited by conversation.Team (conversation.assign / conversation.unassign), with from and to",
	"POST /conversations/{id}/tags":         "audited by conversation.Team (tag.add)",
	"POST /conversations/{id}/tags/remove":  "audited by conversation.Team (tag.remove)",
	"POST /conversations/{id}/notes":        "audited by conversation.Team (note.add), with the mentions",
	"POST /agents/{id}/status":              "audited by conversation.Team (agent.status)",
	"POST /agents/{id}/cap":                 "audited by conversation.Team (agent.cap)",
	"POST /canned":                          "audited by the handler (canned.save), with the id it got",
	"POST /canned/{id}/delete":              "audited by the handler (canned.delete)",

	"POST /api/v1/conversations/{id}/claim":         "audited by conversation.Team (conversation.claim), marked via api",
	"POST /api/v1/conversations/{id}/assign":        "audited by conversation.Team (conversation.assign / conversation.unassign), marked via api",
	"POST /api/v1/conversations/{id}/tags":          "audited by conversation.Team (tag.add), marked via api",
	"DELETE /api/v1/conversations/{id}/tags/{name}": "audited by conversation.Team (tag.remove), marked via api",
	"POST /admin/webhooks":                          "audited by the handler (api_webhook.create), with the endpoint's id",
	"POST /admin/webhooks/{id}/enable":              "audited by the handler (api_webhook.enable)",
	"POST /admin/webhooks/{id}/disable":             "audited by the handler (api_webhook.disable)",
	"POST /admin/webhooks/{id}/test":                "audited by the handler (api_webhook.test)",
	"POST /admin/webhooks/{id}/delete":              "audited by the handler (api_webhook.delete)",
}

// AuditedAction is the action the audit middleware writes for a route
// pattern, "" when it writes none.
func AuditedAction(pattern string) string { return auditedRoutes[pattern].action }

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// audited wraps h so that a successful request (any status below 400) on
// an audited route writes its audit line, with the actor who was signed
// in when it started. A failure to write is logged, never shown: the
// action itself already happened.
func (s *Server) audited(pattern string, h http.Handler) http.Handler {
	ar, ok := auditedRoutes[pattern]
	if !ok {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := s.currentUser(r)
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status >= 400 || u == nil {
			return
		}
		e := baton.AuditEntry{ActorID: &u.ID, Action: ar.action, Detail: map[string]any{"via": "console"}}
		if ar.subject != "" {
			e.Subject = ar.subject + ":" + r.PathValue("id")
		}
		for _, f := range ar.fields {
			if v := r.PostFormValue(f); v != "" {
				e.Detail[f] = v
			}
		}
		if ar.action == ActionReply {
			e.Detail["length"] = len([]rune(strings.TrimSpace(r.PostFormValue("text"))))
		}
		s.writeAudit(r.Context(), e)
	})
}

// writeAudit records e when an audit log is configured; failures are
// logged, because the action it describes already took effect.
func (s *Server) writeAudit(ctx context.Context, e baton.AuditEntry) {
	if s.cfg.Audit == nil {
		return
	}
	if e.At.IsZero() {
		e.At = s.cfg.Now()
	}
	if err := s.cfg.Audit.Audit(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "write audit log", "action", e.Action, "subject", e.Subject, "err", err)
	}
}

// service finds an optional storage service among those injected: the
// PostgreSQL store implements them all, and reaching it through the
// interfaces already configured keeps web free of storage imports.
func service[T any](s *Server) (T, error) {
	for _, c := range []any{s.cfg.Audit, s.cfg.Users, s.cfg.Console.Store} {
		if v, ok := c.(T); ok {
			return v, nil
		}
	}
	var zero T
	return zero, baton.Errorf(baton.EUNAVAILABLE, "This part of Baton is not configured.")
}

// auditActions are offered in the action filter; "handover." matches every
// handover arriving by webhook.
var auditActions = []string{
	ActionReply, ActionDone, ActionRequestControl, ActionAbandonRequest, ActionRetry,
	"handover.", "handover.pass", "handover.take", "handover.request",
	"user.create", "user.role", "user.disable", "user.enable", "user.password", "user.sign_out_everywhere",
	"page.settings", ActionSignOut, ActionTokenCreate, ActionTokenRevoke, "api_webhook.",
}

const auditPageSize = 50

// auditQuery reads the filters from the URL; dates are whole days in the
// console's time zone, "to" inclusive.
func (s *Server) auditQuery(v url.Values) (baton.AuditQuery, templates.AuditPage, error) {
	d := templates.AuditPage{Action: v.Get("action"), Subject: strings.TrimSpace(v.Get("subject")),
		From: v.Get("from"), To: v.Get("to"), Actions: auditActions, Location: s.cfg.Console.loc()}
	q := baton.AuditQuery{Action: d.Action, Subject: d.Subject}
	if a := v.Get("actor"); a != "" {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return q, d, baton.Errorf(baton.EINVALID, "Unknown actor.")
		}
		q.ActorID, d.ActorID = id, id
	}
	for _, x := range []struct {
		in  string
		out *time.Time
		add int
	}{{d.From, &q.From, 0}, {d.To, &q.To, 1}} {
		if x.in == "" {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02", x.in, s.cfg.Console.loc())
		if err != nil {
			return q, d, baton.Errorf(baton.EINVALID, "Dates are YYYY-MM-DD.")
		}
		*x.out = t.AddDate(0, 0, x.add)
	}
	return q, d, nil
}

// showAudit renders the audit log page for supervisors and admins.
func (s *Server) showAudit(w http.ResponseWriter, r *http.Request) {
	store, err := service[baton.AuditReader](s)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v := r.URL.Query()
	q, d, err := s.auditQuery(v)
	page, _ := strconv.Atoi(v.Get("page"))
	page = max(page, 1)
	if err != nil {
		d.Error = baton.ErrorMessage(err)
		q = baton.AuditQuery{}
	}
	q.Limit, q.Offset = auditPageSize, (page-1)*auditPageSize
	d.Records, d.Total, err = store.AuditEntries(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.cfg.Users != nil {
		if d.Users, err = s.cfg.Users.Users(r.Context()); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	link := func(p int) string {
		x := url.Values{}
		for k, vs := range v {
			if k != "page" {
				x[k] = vs
			}
		}
		if p > 1 {
			x.Set("page", strconv.Itoa(p))
		}
		if len(x) == 0 {
			return "/audit"
		}
		return "/audit?" + x.Encode()
	}
	if page > 1 {
		d.PrevHref = link(page - 1)
	}
	if page*auditPageSize < d.Total {
		d.NextHref = link(page + 1)
	}
	d.CSVHref = strings.Replace(link(1), "/audit", "/audit.csv", 1)
	s.renderComponent(w, r, http.StatusOK, templates.Audit(s.pageData(r, "Audit log", "audit"), d))
}

// auditCSVLimit caps one export; narrower filters get the rest.
const auditCSVLimit = 50000

// exportAudit answers the filtered audit log as CSV.
func (s *Server) exportAudit(w http.ResponseWriter, r *http.Request) {
	store, err := service[baton.AuditReader](s)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q, _, err := s.auditQuery(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q.Limit = auditCSVLimit
	recs, _, err := store.AuditEntries(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="baton-audit.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	if err := WriteAuditCSV(w, recs, s.cfg.Console.loc()); err != nil {
		s.log.WarnContext(r.Context(), "write audit csv", "err", err)
	}
}

// WriteAuditCSV writes audit lines as CSV, one header row first. Every
// cell goes through CSVCell, so a value typed by a person cannot become a
// formula in a spreadsheet.
func WriteAuditCSV(w interface{ Write([]byte) (int, error) }, recs []*baton.AuditRecord, loc *time.Location) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"id", "time", "actor_id", "actor", "action", "subject", "detail"}); err != nil {
		return err
	}
	for _, r := range recs {
		actorID, actor := "", "system"
		if r.ActorID != nil {
			actorID, actor = strconv.FormatInt(*r.ActorID, 10), r.ActorName
		}
		row := []string{strconv.FormatInt(r.ID, 10), r.At.In(loc).Format(time.RFC3339), actorID, actor, r.Action, r.Subject, r.Detail}
		for i := range row {
			row[i] = CSVCell(row[i])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// CSVCell guards a cell against formula injection (OWASP "CSV
// injection"): a value starting with =, +, -, @, tab or carriage return is
// prefixed with a quote so spreadsheets show it as text. Quoting of commas,
// quotes and newlines is left to encoding/csv.
func CSVCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
