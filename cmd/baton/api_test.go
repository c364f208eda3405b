package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/web"
)

// apiCall sends one API request with a bearer token and decodes the JSON.
func apiCall(t *testing.T, addr, token, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: content type %q: %s", method, path, ct, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// auditCount counts audit lines of an action on a subject.
func (s *testStack) auditCount(action, subject string) int {
	s.t.Helper()
	_, n, err := s.inst.db.AuditEntries(context.Background(), baton.AuditQuery{Action: action, Subject: subject})
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// TestAPIJourney: with a token created through storage, a program lists
// and reads conversations, replies (the person receives it), marks Done
// and requests control again, each action audited as "via api".
func TestAPIJourney(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	addr := s.inst.Addr()
	psid := handedOver(t, s, "Tomas", "Ruiz")
	conv := s.conversationOf(psid)
	subject := fmt.Sprintf("conversation:%d", conv.ID)
	_, secret, err := s.inst.db.CreateAPIToken(ctx, s.admin.ID, "test")
	if err != nil {
		t.Fatal(err)
	}

	var e apiErr
	if code := apiCall(t, addr, "", "GET", "/api/v1/conversations", nil, &e); code != http.StatusUnauthorized || e.Error.Code != baton.EUNAUTHORIZED {
		t.Fatalf("no token: %d %+v", code, e)
	}
	if code := apiCall(t, addr, "baton_forged", "GET", "/api/v1/conversations", nil, &e); code != http.StatusUnauthorized {
		t.Fatalf("forged token: %d", code)
	}

	var list struct {
		Conversations []web.APIConversation `json:"conversations"`
	}
	if code := apiCall(t, addr, secret, "GET", "/api/v1/conversations?folder=inbox", nil, &list); code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	if len(list.Conversations) != 1 || list.Conversations[0].PSID != psid || list.Conversations[0].Owner != "baton" {
		t.Fatalf("list = %+v", list.Conversations)
	}
	if code := apiCall(t, addr, secret, "GET", "/api/v1/conversations?folder=nope", nil, &e); code != http.StatusBadRequest || e.Error.Code != baton.EINVALID {
		t.Errorf("bad folder: %d %+v", code, e)
	}
	var one struct {
		Conversation web.APIConversation `json:"conversation"`
	}
	if code := apiCall(t, addr, secret, "GET", fmt.Sprintf("/api/v1/conversations/%d", conv.ID), nil, &one); code != http.StatusOK || one.Conversation.Name != "Tomas Ruiz" {
		t.Fatalf("read: %d %+v", code, one)
	}
	if code := apiCall(t, addr, secret, "GET", "/api/v1/conversations/999999", nil, &e); code != http.StatusNotFound || e.Error.Code != baton.ENOTFOUND {
		t.Errorf("missing: %d %+v", code, e)
	}
	var msgs struct {
		Messages []web.APIMessage `json:"messages"`
	}
	apiCall(t, addr, secret, "GET", fmt.Sprintf("/api/v1/conversations/%d/messages", conv.ID), nil, &msgs)
	if len(msgs.Messages) == 0 || msgs.Messages[0].Author != "user" {
		t.Fatalf("messages = %+v", msgs.Messages)
	}

	// A reply reaches the person through the outbox.
	path := fmt.Sprintf("/api/v1/conversations/%d", conv.ID)
	if code := apiCall(t, addr, secret, "POST", path+"/messages", map[string]string{"text": ""}, &e); code != http.StatusBadRequest || e.Error.Code != baton.EINVALID || e.Error.Message == "" {
		t.Errorf("empty reply: %d %+v", code, e)
	}
	var queued struct {
		Outbox web.APIOutboxItem `json:"outbox"`
	}
	if code := apiCall(t, addr, secret, "POST", path+"/messages", map[string]string{"text": "Hello from the CRM"}, &queued); code != http.StatusAccepted || queued.Outbox.ID == 0 {
		t.Fatalf("reply: %d %+v", code, queued)
	}
	waitFor(t, "the API reply on Messenger", func() bool { return s.pageSays(psid, demoBatonAppID, "Hello from the CRM") })
	if n := s.auditCount(web.ActionReply, subject); n != 1 {
		t.Errorf("reply audit lines: %d", n)
	}

	// Done with metadata hands back to the bot.
	done := map[string]any{"outcome": "resolved", "note": "closed from the CRM", "tags": []string{"crm"}}
	if code := apiCall(t, addr, secret, "POST", path+"/done", map[string]any{"outcome": "meh"}, &e); code != http.StatusBadRequest {
		t.Errorf("bad outcome: %d", code)
	}
	if code := apiCall(t, addr, secret, "POST", path+"/done", done, &queued); code != http.StatusAccepted || !strings.Contains(queued.Outbox.Metadata, `"outcome":"resolved"`) {
		t.Fatalf("done: %d %+v", code, queued)
	}
	waitFor(t, "the hand-back", func() bool {
		c := s.conversationOf(psid)
		return c.Status == baton.StatusClosed && c.CloseReason == baton.CloseDone
	})
	if code := apiCall(t, addr, secret, "POST", path+"/done", done, &e); code != http.StatusConflict || e.Error.Code != baton.ECONFLICT {
		t.Errorf("done twice: %d %+v", code, e)
	}

	// The bot owns it again: request control back.
	if code := apiCall(t, addr, secret, "POST", path+"/request", map[string]string{"reason": "customer called back"}, &queued); code != http.StatusAccepted {
		t.Fatalf("request: %d", code)
	}
	if c := s.conversationOf(psid); c.RequestedAt == nil || c.RequestReason != "customer called back" {
		t.Errorf("request not recorded: %+v", c)
	}
	recs, _, _ := s.inst.db.AuditEntries(ctx, baton.AuditQuery{Subject: subject})
	actions := map[string]int{}
	for _, r := range recs {
		actions[r.Action]++
		if r.ActorID != nil && !strings.Contains(r.Detail, `"via": "api"`) {
			t.Errorf("%s line not marked as API: %s", r.Action, r.Detail)
		}
	}
	for _, a := range []string{web.ActionReply, web.ActionDone, web.ActionRequestControl, "handover.pass"} {
		if actions[a] != 1 {
			t.Errorf("audit lines for %s: %d (all: %v)", a, actions[a], actions)
		}
	}

	// Search finds the person's words with the match marked.
	var found struct {
		Results []web.APISearchHit `json:"results"`
	}
	apiCall(t, addr, secret, "GET", "/api/v1/search?q=human", nil, &found)
	if len(found.Results) == 0 || found.Results[0].ConversationID != conv.ID {
		t.Fatalf("search: %+v", found.Results)
	}
	marked := false
	for _, p := range found.Results[0].Parts {
		marked = marked || (p.Match && strings.EqualFold(p.Text, "human"))
	}
	if !marked {
		t.Errorf("no highlighted match in %+v", found.Results[0].Parts)
	}
}

// TestAPITokenRevokedAndAgentLimits: a revoked token stops at once; an
// agent's token sees neither bot-owned threads nor may it request control.
func TestAPITokenRevokedAndAgentLimits(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	addr := s.inst.Addr()
	agent := &baton.User{Email: "agent@example.test", Name: "Ana", Role: baton.RoleAgent, PasswordHash: "$2a$04$x"}
	if err := s.inst.db.CreateUser(ctx, agent); err != nil {
		t.Fatal(err)
	}
	tok, secret, err := s.inst.db.CreateAPIToken(ctx, agent.ID, "script")
	if err != nil {
		t.Fatal(err)
	}
	psid := s.newPerson("Lea", "Bot")
	s.say(psid, "hi")
	waitFor(t, "the conversation", func() bool { return s.conversationOf(psid) != nil })
	conv := s.conversationOf(psid)
	var e apiErr
	if code := apiCall(t, addr, secret, "GET", "/api/v1/conversations?folder=bot", nil, &e); code != http.StatusBadRequest {
		t.Errorf("agent listing bot folder: %d", code)
	}
	if code := apiCall(t, addr, secret, "GET", fmt.Sprintf("/api/v1/conversations/%d", conv.ID), nil, &e); code != http.StatusForbidden || e.Error.Code != baton.EFORBIDDEN {
		t.Errorf("agent reading a bot-owned thread: %d %+v", code, e)
	}
	if _, err := s.inst.db.RevokeAPIToken(ctx, tok.ID, agent.ID); err != nil {
		t.Fatal(err)
	}
	if code := apiCall(t, addr, secret, "GET", "/api/v1/conversations", nil, &e); code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", code)
	}
}

var metaCSRF = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)

// TestAuditConsoleActions performs every audited console action through
// the console's own forms (signed in, with CSRF) and checks each wrote
// its audit line; every route the audit middleware records must have a
// case here, so none is left untested.
func TestAuditConsoleActions(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	addr := s.inst.Addr()
	cookie := rtSignIn(t, addr, "admin@example.test", "correct horse battery")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.AddCookie(cookie)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := metaCSRF.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the inbox: %d", resp.StatusCode)
	}
	post := func(path string, form url.Values) int {
		t.Helper()
		form.Set("csrf_token", string(m[1]))
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://"+addr)
		req.AddCookie(cookie)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	psid := handedOver(t, s, "Audit", "Person")
	conv := s.conversationOf(psid)
	cpath := fmt.Sprintf("/conversations/%d", conv.ID)
	subject := fmt.Sprintf("conversation:%d", conv.ID)
	var failedID int64
	cases := []struct {
		pattern string
		setup   func()
		path    func() string
		form    url.Values
		action  string
		subject func() string
	}{
		{pattern: "POST /conversations/{id}/messages", path: func() string { return cpath + "/messages" },
			form: url.Values{"text": {"audited hello"}}, action: web.ActionReply, subject: func() string { return subject }},
		{pattern: "POST /outbox/{id}/retry", setup: func() {
			err := s.inst.db.Get(&failedID, `
				insert into outbox (conversation_id, kind, status, last_error) values ($1, 'mark_seen', 'failed', 'test')
				returning id`, conv.ID)
			if err != nil {
				t.Fatal(err)
			}
		}, path: func() string { return fmt.Sprintf("/outbox/%d/retry", failedID) }, form: url.Values{},
			action: web.ActionRetry, subject: func() string { return fmt.Sprintf("outbox:%d", failedID) }},
		{pattern: "POST /conversations/{id}/done", setup: func() {
			waitFor(t, "the reply sent", func() bool { return s.pageSays(psid, demoBatonAppID, "audited hello") })
		}, path: func() string { return cpath + "/done" }, form: url.Values{"outcome": {"resolved"}, "note": {"n"}},
			action: web.ActionDone, subject: func() string { return subject }},
		{pattern: "POST /conversations/{id}/request", setup: func() {
			waitFor(t, "the hand-back", func() bool { return s.conversationOf(psid).Status == baton.StatusClosed })
		}, path: func() string { return cpath + "/request" }, form: url.Values{"reason": {"check"}},
			action: web.ActionRequestControl, subject: func() string { return subject }},
		{pattern: "POST /conversations/{id}/request/abandon", path: func() string { return cpath + "/request/abandon" },
			form: url.Values{}, action: web.ActionAbandonRequest, subject: func() string { return subject }},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.pattern] = true
		if c.setup != nil {
			c.setup()
		}
		before := s.auditCount(c.action, c.subject())
		if code := post(c.path(), c.form); code != http.StatusSeeOther {
			t.Fatalf("%s: %d", c.pattern, code)
		}
		if after := s.auditCount(c.action, c.subject()); after != before+1 {
			t.Errorf("%s wrote %d audit lines, want 1", c.pattern, after-before)
		}
	}
	// A refused action writes nothing.
	before := s.auditCount(web.ActionDone, subject)
	if code := post(cpath+"/done", url.Values{"outcome": {"resolved"}}); code < 400 {
		t.Errorf("done on a closed conversation: %d", code)
	}
	if s.auditCount(web.ActionDone, subject) != before {
		t.Error("a refused Done was audited")
	}
	recs, _, _ := s.inst.db.AuditEntries(ctx, baton.AuditQuery{Action: web.ActionDone, Subject: subject})
	if len(recs) != 1 || *recs[0].ActorID != s.admin.ID || !strings.Contains(recs[0].Detail, `"outcome": "resolved"`) {
		t.Errorf("done line = %+v", recs)
	}
	for _, r := range web.New(web.Config{}).Routes() {
		if strings.HasPrefix(r.Path, "/logout") {
			continue // signing out is covered by the web package's tests
		}
		if web.AuditedAction(r.Pattern) != "" && !covered[r.Pattern] {
			t.Errorf("audited route %s has no case in this test", r.Pattern)
		}
	}
}

// TestDashboardLive: a handed-over conversation waits in the queue until
// an agent answers; the dashboard shows it and the handover in.
func TestDashboardLive(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	addr := s.inst.Addr()
	cookie := rtSignIn(t, addr, "admin@example.test", "correct horse battery")
	dashboard := func() string {
		req, _ := http.NewRequest("GET", "http://"+addr+"/dashboard", nil)
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("dashboard: %d", resp.StatusCode)
		}
		return string(b)
	}
	psid := handedOver(t, s, "Dana", "Queue")
	if page := dashboard(); !strings.Contains(page, `data-testid="queue-count">1<`) {
		t.Errorf("queue of one not shown")
	}
	st, err := s.inst.db.TeamStats(ctx, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	in := 0
	for _, h := range st.Hours {
		in += h.In
	}
	if in != 1 || st.Queue != 1 {
		t.Errorf("handovers in %d, queue %d; want 1 and 1", in, st.Queue)
	}
	conv := s.conversationOf(psid)
	if _, err := s.inst.cons.web.Service.Reply(ctx, s.admin, conv.ID, "On it", "", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the queue to empty", func() bool { return strings.Contains(dashboard(), `data-testid="queue-count">0<`) })
	st, _ = s.inst.db.TeamStats(ctx, s.clock.Now())
	if st.MedianFirstResponse <= 0 {
		t.Errorf("no first response measured: %+v", st)
	}
}

// TestAPIAssignAndTags: claim, assign (by id or email), unassign and tags
// through the API follow the console's rules (an agent claims and
// releases, only supervisors assign others) and write the Team's audit
// lines marked "via": "api".
func TestAPIAssignAndTags(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	addr := s.inst.Addr()
	agent := addAgent(t, s, "ana@example.test", "Ana")
	_, agentTok, err := s.inst.db.CreateAPIToken(ctx, agent.ID, "script")
	if err != nil {
		t.Fatal(err)
	}
	_, adminTok, err := s.inst.db.CreateAPIToken(ctx, s.admin.ID, "crm")
	if err != nil {
		t.Fatal(err)
	}
	psid := handedOver(t, s, "Noa", "Kim")
	conv := s.conversationOf(psid)
	path := fmt.Sprintf("/api/v1/conversations/%d", conv.ID)
	subject := fmt.Sprintf("conversation:%d", conv.ID)
	type changed struct {
		Conversation web.APIConversation `json:"conversation"`
		Tags         []string            `json:"tags"`
	}
	var out changed
	var e apiErr

	// The agent claims it, may not hand it to someone else, releases it.
	if code := apiCall(t, addr, agentTok, "POST", path+"/claim", nil, &out); code != http.StatusOK ||
		out.Conversation.AssignedUserID == nil || *out.Conversation.AssignedUserID != agent.ID {
		t.Fatalf("agent claim: %d %+v", code, out)
	}
	if code := apiCall(t, addr, agentTok, "POST", path+"/assign", map[string]any{"user_id": s.admin.ID}, &e); code != http.StatusForbidden || e.Error.Code != baton.EFORBIDDEN {
		t.Errorf("agent assigning to another: %d %+v", code, e)
	}
	if code := apiCall(t, addr, adminTok, "POST", path+"/claim", nil, &e); code != http.StatusConflict {
		t.Errorf("claiming someone else's: %d %+v", code, e)
	}
	if code := apiCall(t, addr, agentTok, "POST", path+"/assign", map[string]any{"user_id": nil}, &out); code != http.StatusOK || out.Conversation.AssignedUserID != nil {
		t.Fatalf("agent release: %d %+v", code, out)
	}

	// A supervisor (here the admin) assigns by email and by id.
	for _, c := range []struct {
		body any
		code int
	}{
		{map[string]any{}, http.StatusBadRequest},
		{map[string]any{"user_id": agent.ID, "email": "ana@example.test"}, http.StatusBadRequest},
		{map[string]any{"user_id": "ana"}, http.StatusBadRequest},
		{map[string]any{"email": "nobody@example.test"}, http.StatusBadRequest},
		{map[string]any{"user_id": 987654}, http.StatusBadRequest},
	} {
		if code := apiCall(t, addr, adminTok, "POST", path+"/assign", c.body, &e); code != c.code || e.Error.Message == "" {
			t.Errorf("assign %v: %d %+v", c.body, code, e)
		}
	}
	if code := apiCall(t, addr, adminTok, "POST", path+"/assign", map[string]any{"email": "ANA@example.test"}, &out); code != http.StatusOK ||
		out.Conversation.AssignedUserID == nil || *out.Conversation.AssignedUserID != agent.ID {
		t.Fatalf("assign by email: %d %+v", code, out)
	}
	if code := apiCall(t, addr, adminTok, "POST", path+"/assign", map[string]any{"user_id": 0}, &out); code != http.StatusOK || out.Conversation.AssignedUserID != nil {
		t.Fatalf("unassign with 0: %d %+v", code, out)
	}

	// Tags: added (cleaned), listed, removed by name.
	if code := apiCall(t, addr, agentTok, "POST", path+"/tags", map[string]string{"name": "  Needs Refund "}, &out); code != http.StatusOK ||
		strings.Join(out.Tags, ",") != "needs refund" {
		t.Fatalf("add tag: %d %+v", code, out)
	}
	if code := apiCall(t, addr, agentTok, "POST", path+"/tags", map[string]string{"name": ""}, &e); code != http.StatusBadRequest {
		t.Errorf("empty tag: %d", code)
	}
	if code := apiCall(t, addr, agentTok, "DELETE", path+"/tags/"+url.PathEscape("needs refund"), nil, &out); code != http.StatusOK || len(out.Tags) != 0 {
		t.Fatalf("remove tag: %d %+v", code, out)
	}

	recs, _, err := s.inst.db.AuditEntries(ctx, baton.AuditQuery{Subject: subject, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, r := range recs {
		if r.ActorID == nil {
			continue
		}
		actions[r.Action]++
		if !strings.Contains(r.Detail, `"via": "api"`) {
			t.Errorf("%s line not marked as API: %s", r.Action, r.Detail)
		}
	}
	want := map[string]int{"conversation.claim": 1, "conversation.assign": 1, "conversation.unassign": 2, "tag.add": 1, "tag.remove": 1}
	for a, n := range want {
		if actions[a] != n {
			t.Errorf("audit lines for %s: %d, want %d (all: %v)", a, actions[a], n, actions)
		}
	}
}
