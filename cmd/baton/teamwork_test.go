package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/account"
	"github.com/baton-chat/baton/internal/baton"
)

// consoleClient is a signed-in console session driven over HTTP, the way
// the console's own forms post.
type consoleClient struct {
	t      *testing.T
	addr   string
	cookie *http.Cookie
	csrf   string
	client *http.Client
}

func newConsoleClient(t *testing.T, s *testStack, email string) *consoleClient {
	t.Helper()
	addr := s.inst.Addr()
	c := &consoleClient{t: t, addr: addr, cookie: rtSignIn(t, addr, email, "correct horse battery"),
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	code, page := c.get("/")
	m := metaCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the inbox: %d", code)
	}
	c.csrf = m[1]
	return c
}

func (c *consoleClient) get(path string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+c.addr+path, nil)
	req.AddCookie(c.cookie)
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *consoleClient) post(path string, form url.Values) int {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", c.csrf)
	req, _ := http.NewRequest("POST", "http://"+c.addr+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+c.addr)
	req.AddCookie(c.cookie)
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func addAgent(t *testing.T, s *testStack, email, name string) *baton.User {
	t.Helper()
	u, err := s.inst.acct.service.CreateUser(context.Background(), s.admin, account.NewUser{
		Email: email, Name: name, Role: baton.RoleAgent, Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func assignee(s *testStack, psid string) int64 {
	c := s.conversationOf(psid)
	if c == nil || c.AssignedUserID == nil {
		return 0
	}
	return *c.AssignedUserID
}

// TestTeamworkJourney: agents go online, handovers are auto-assigned
// round robin under caps, the queue waits when everyone is full, an agent
// claims, a supervisor reassigns, Done unassigns; tags filter the list
// and a note's @mention reaches the colleague. Every step is audited.
func TestTeamworkJourney(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	ana := addAgent(t, s, "ana@example.test", "Ana Alves")
	ben := addAgent(t, s, "ben@example.test", "Ben Brown")
	ca := newConsoleClient(t, s, "ana@example.test")
	cb := newConsoleClient(t, s, "ben@example.test")
	admin := newConsoleClient(t, s, "admin@example.test")

	// Nobody is online: a handover waits in the queue.
	p0 := handedOver(t, s, "Queue", "First")
	if _, page := admin.get("/?fragment=list&folder=unassigned"); !strings.Contains(page, "Queue First") ||
		!strings.Contains(page, `data-count="1" data-testid="count-unassigned"`) {
		t.Fatalf("the unassigned folder does not show the waiting conversation:\n%s", page)
	}
	if code := ca.post(fmt.Sprintf("/agents/%d/status", ben.ID), url.Values{"status": {"online"}}); code < 400 {
		t.Errorf("an agent set a colleague's status: %d", code)
	}
	for _, c := range []*consoleClient{ca, cb} {
		id := ana.ID
		if c == cb {
			id = ben.ID
		}
		if code := c.post(fmt.Sprintf("/agents/%d/status", id), url.Values{"status": {"online"}}); code != http.StatusSeeOther {
			t.Fatalf("set status: %d", code)
		}
	}
	waitFor(t, "the queued conversation auto-assigned", func() bool { return assignee(s, p0) != 0 })

	p1 := handedOver(t, s, "Round", "One")
	p2 := handedOver(t, s, "Round", "Two")
	waitFor(t, "both auto-assigned", func() bool { return assignee(s, p1) != 0 && assignee(s, p2) != 0 })
	load := map[int64]int{}
	for _, p := range []string{p0, p1, p2} {
		load[assignee(s, p)]++
	}
	if load[ana.ID]+load[ben.ID] != 3 || load[ana.ID] == 0 || load[ben.ID] == 0 {
		t.Fatalf("round robin gave %v, want both agents some of three", load)
	}
	if n := s.auditCount("conversation.auto_assign", fmt.Sprintf("conversation:%d", s.conversationOf(p1).ID)); n != 1 {
		t.Errorf("auto-assign wrote %d audit lines, want 1", n)
	}

	// Caps at the current loads: the next handover waits unassigned.
	for id, n := range load {
		if code := admin.post(fmt.Sprintf("/agents/%d/cap", id), url.Values{"cap": {fmt.Sprint(n)}}); code != http.StatusSeeOther {
			t.Fatalf("set cap: %d", code)
		}
	}
	if code := ca.post(fmt.Sprintf("/agents/%d/cap", ana.ID), url.Values{"cap": {"9"}}); code != http.StatusForbidden {
		t.Errorf("an agent set a cap: %d", code)
	}
	p3 := handedOver(t, s, "Over", "Cap")
	s.inst.cons.team.WakeUp()
	if _, err := s.inst.cons.team.AssignOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if a := assignee(s, p3); a != 0 {
		t.Fatalf("assigned to %d although everyone is at their cap", a)
	}
	c3 := s.conversationOf(p3)
	subject := fmt.Sprintf("conversation:%d", c3.ID)
	cpath := fmt.Sprintf("/conversations/%d", c3.ID)

	// Ben claims it by hand; Ana cannot take it from him.
	if code := cb.post(cpath+"/claim", nil); code != http.StatusSeeOther {
		t.Fatalf("claim: %d", code)
	}
	if assignee(s, p3) != ben.ID || s.auditCount("conversation.claim", subject) != 1 {
		t.Fatalf("claim: assignee %d, audit %d", assignee(s, p3), s.auditCount("conversation.claim", subject))
	}
	if code := ca.post(cpath+"/claim", nil); code != http.StatusConflict {
		t.Errorf("claiming a colleague's conversation: %d, want 409", code)
	}
	if code := ca.post(cpath+"/assign", url.Values{"user_id": {fmt.Sprint(ana.ID)}}); code != http.StatusForbidden {
		t.Errorf("an agent reassigning: %d, want 403", code)
	}
	// The supervisor reassigns to Ana.
	if code := admin.post(cpath+"/assign", url.Values{"user_id": {fmt.Sprint(ana.ID)}}); code != http.StatusSeeOther {
		t.Fatalf("assign: %d", code)
	}
	if assignee(s, p3) != ana.ID || s.auditCount("conversation.assign", subject) != 1 {
		t.Fatalf("reassign: assignee %d", assignee(s, p3))
	}
	recs, _, _ := s.inst.db.AuditEntries(ctx, baton.AuditQuery{Action: "conversation.assign", Subject: subject})
	if len(recs) != 1 || !strings.Contains(recs[0].Detail, fmt.Sprintf(`"from": %d`, ben.ID)) {
		t.Errorf("assign audit = %+v", recs)
	}
	if _, page := ca.get("/?fragment=list&folder=mine"); !strings.Contains(page, "Over Cap") {
		t.Error("Ana's Mine folder lacks the reassigned conversation")
	}

	// Tags: create by typing, filter the list, remove.
	if code := ca.post(cpath+"/tags", url.Values{"tag": {"  VIP "}}); code != http.StatusSeeOther {
		t.Fatalf("add tag: %d", code)
	}
	_, page := ca.get("/?fragment=list&folder=inbox&tag=vip")
	if !strings.Contains(page, "Over Cap") || strings.Contains(page, "Round One") {
		t.Errorf("tag filter:\n%s", page)
	}
	if s.auditCount("tag.add", subject) != 1 {
		t.Error("tag.add not audited")
	}
	if code := ca.post(cpath+"/tags/remove", url.Values{"tag": {"vip"}}); code != http.StatusSeeOther {
		t.Fatalf("remove tag: %d", code)
	}
	if _, page := ca.get("/?fragment=list&folder=inbox&tag=vip"); strings.Contains(page, "Over Cap") {
		t.Error("a removed tag still filters the conversation in")
	}

	// A note mentioning Ben: his Mentions folder shows it until he opens it.
	if code := ca.post(cpath+"/notes", url.Values{"text": {"@ben <b>can you check</b> the refund?"}}); code != http.StatusSeeOther {
		t.Fatalf("add note: %d", code)
	}
	if _, page := cb.get("/?fragment=list&folder=mentions"); !strings.Contains(page, "Over Cap") || !strings.Contains(page, `data-count="1" data-testid="count-mentions"`) {
		t.Errorf("Ben's mentions:\n%s", page)
	}
	_, page = cb.get(cpath)
	if !strings.Contains(page, `<mark class="mention">@ben</mark>`) || !strings.Contains(page, "&lt;b&gt;can you check&lt;/b&gt;") {
		t.Errorf("the note is not shown escaped with the mention highlighted")
	}
	if _, page := cb.get("/?fragment=list&folder=mentions"); strings.Contains(page, "Over Cap") {
		t.Error("the mention stays after Ben opened the conversation")
	}
	if s.auditCount("note.add", subject) != 1 {
		t.Error("note.add not audited")
	}
	if msgs := s.personSees(p3); strings.Contains(describe(msgs), "refund") {
		t.Fatalf("the internal note reached the person: %s", describe(msgs))
	}

	// Done unassigns (BATON_UNASSIGN_ON_DONE defaults to true).
	if code := ca.post(cpath+"/done", url.Values{"outcome": {"resolved"}}); code != http.StatusSeeOther {
		t.Fatalf("done: %d", code)
	}
	if a := assignee(s, p3); a != 0 {
		t.Errorf("still assigned to %d after Done", a)
	}
	if s.auditCount("agent.status", fmt.Sprintf("user:%d", ana.ID)) != 1 || s.auditCount("agent.cap", fmt.Sprintf("user:%d", ben.ID)) != 1 {
		t.Error("status or cap change not audited")
	}
}

// TestListSortOrders checks the three sort orders on conversations whose
// clocks are set directly.
func TestListSortOrders(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	a := handedOver(t, s, "Sort", "Answered")
	b := handedOver(t, s, "Sort", "Waiting")
	c := handedOver(t, s, "Sort", "Closing")
	set := func(psid string, lastUser, lastMsg int64) {
		if _, err := s.inst.db.Exec(`update conversations set last_user_event_ms = $2, last_message_ms = $3 where psid = $1`, psid, lastUser, lastMsg); err != nil {
			t.Fatal(err)
		}
	}
	// a: the person spoke at 3000, an agent answered at 9000 (newest).
	// b: the person spoke last at 5000 and waits.
	// c: the person spoke last at 1000 (oldest: window closes first), waiting too.
	set(a, 3000, 9000)
	set(b, 5000, 5000)
	set(c, 1000, 1000)
	order := func(sort string) string {
		list, err := s.inst.db.ListConversations(ctx, baton.ConversationFilter{Folder: baton.FolderInbox, Sort: sort})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, conv := range list {
			names = append(names, strings.TrimPrefix(conv.Name(), "Sort "))
		}
		return strings.Join(names, ",")
	}
	cases := []struct{ sort, want string }{
		{baton.SortNewest, "Answered,Waiting,Closing"},
		{baton.SortWaiting, "Closing,Waiting,Answered"},
		{baton.SortWindow, "Closing,Answered,Waiting"},
	}
	for _, tc := range cases {
		if got := order(tc.sort); got != tc.want {
			t.Errorf("sort %s: %s, want %s", tc.sort, got, tc.want)
		}
	}
}

// TestTeamAndCannedPages: supervisors see the team with load and caps and
// manage canned replies; agents may do neither; every change is audited.
func TestTeamAndCannedPages(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	addAgent(t, s, "ana@example.test", "Ana Alves")
	admin := newConsoleClient(t, s, "admin@example.test")
	ca := newConsoleClient(t, s, "ana@example.test")

	code, page := admin.get("/team")
	if code != http.StatusOK || !strings.Contains(page, "Ana Alves") || !strings.Contains(page, "@ana") {
		t.Fatalf("team page: %d\n%s", code, page)
	}
	if code, _ := ca.get("/team"); code != http.StatusForbidden {
		t.Errorf("an agent opened the team page: %d", code)
	}
	if code := ca.post("/canned", url.Values{"shortcut": {"x"}, "body": {"y"}}); code != http.StatusForbidden {
		t.Errorf("an agent saved a canned reply: %d", code)
	}
	cases := []struct {
		shortcut, body string
		want           int
	}{
		{"/thanks", "Thanks {{first_name}}!", http.StatusSeeOther},
		{"two words", "x", http.StatusBadRequest},
		{"empty", "  ", http.StatusBadRequest},
		{"THANKS", "taken, case-insensitively", http.StatusConflict},
	}
	for _, c := range cases {
		if code := admin.post("/canned", url.Values{"shortcut": {c.shortcut}, "body": {c.body}}); code != c.want {
			t.Errorf("save %q: %d, want %d", c.shortcut, code, c.want)
		}
	}
	list, err := s.inst.db.CannedReplies(ctx)
	if err != nil || len(list) != 1 || list[0].Shortcut != "thanks" {
		t.Fatalf("canned replies = %+v (%v)", list, err)
	}
	id := list[0].ID
	subject := fmt.Sprintf("canned:%d", id)
	if code := admin.post("/canned", url.Values{"id": {fmt.Sprint(id)}, "shortcut": {"thanks"}, "body": {"Thank you, {{first_name}}."}}); code != http.StatusSeeOther {
		t.Fatalf("edit: %d", code)
	}
	if _, page := admin.get("/canned"); !strings.Contains(page, "Thank you, {{first_name}}.") {
		t.Error("the edit is not shown")
	}
	if code := admin.post(fmt.Sprintf("/canned/%d/delete", id), nil); code != http.StatusSeeOther {
		t.Fatalf("delete: %d", code)
	}
	if s.auditCount("canned.save", subject) != 2 || s.auditCount("canned.delete", subject) != 1 {
		t.Errorf("canned audit: save %d, delete %d", s.auditCount("canned.save", subject), s.auditCount("canned.delete", subject))
	}
}

// TestIdleWarningInHeader: with idle auto-return on, the conversation
// header warns in the last stretch before the thread goes back to the bot.
func TestIdleWarningInHeader(t *testing.T) {
	s := bootStack(t, Env{"BATON_IDLE_RETURN": "30m"})
	admin := newConsoleClient(t, s, "admin@example.test")
	psid := handedOver(t, s, "Idle", "Ida")
	cpath := fmt.Sprintf("/conversations/%d", s.conversationOf(psid).ID)
	if _, page := admin.get(cpath); strings.Contains(page, `data-testid="idle-warning"`) {
		t.Fatal("warned right after the handover")
	}
	s.advance(25 * time.Minute)
	_, page := admin.get(cpath + "?fragment=live")
	if !strings.Contains(page, `data-testid="idle-warning"`) || !strings.Contains(page, "Returns to the bot in") {
		t.Errorf("no idle warning 25 minutes in:\n%s", page)
	}
}
