package web_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/web"
)

func TestCSVCell(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"reply", "reply"},
		{"=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"},
		{"+1+2", "'+1+2"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"a=b", "a=b"},
		{" =1", " =1"},
		{"'already", "'already"},
	}
	for _, c := range cases {
		if got := web.CSVCell(c.in); got != c.want {
			t.Errorf("CSVCell(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestWriteAuditCSV checks that every awkward value survives the trip
// through a CSV reader, and that formulas arrive defused.
func TestWriteAuditCSV(t *testing.T) {
	actor := int64(7)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	recs := []*baton.AuditRecord{
		{ID: 1, At: at, ActorID: &actor, ActorName: `Ann "the agent", Jr.`, Action: "done", Subject: "conversation:1",
			Detail: `{"note":"line one` + "\n" + `line two, with comma"}`},
		{ID: 2, At: at, Action: "handover.pass", Subject: "=cmd|' /C calc'!A0", Detail: `{}`},
		{ID: 3, At: at, ActorID: &actor, ActorName: "@admin", Action: "reply", Subject: "-1", Detail: "+1"},
	}
	var b strings.Builder
	if err := web.WriteAuditCSV(&b, recs, time.UTC); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	if err != nil {
		t.Fatalf("the export is not valid CSV: %v\n%s", err, b.String())
	}
	want := [][]string{
		{"id", "time", "actor_id", "actor", "action", "subject", "detail"},
		{"1", "2026-01-02T03:04:05Z", "7", `Ann "the agent", Jr.`, "done", "conversation:1", "{\"note\":\"line one\nline two, with comma\"}"},
		{"2", "2026-01-02T03:04:05Z", "", "system", "handover.pass", "'=cmd|' /C calc'!A0", "{}"},
		{"3", "2026-01-02T03:04:05Z", "7", "'@admin", "reply", "'-1", "'+1"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d = %q, want %q", i, rows[i], want[i])
		}
	}
}

func TestSplitSnippet(t *testing.T) {
	S, E := baton.SnippetStart, baton.SnippetStop
	cases := []struct {
		in   string
		want []web.SnippetPart
	}{
		{"", nil},
		{"no match", []web.SnippetPart{{Text: "no match"}}},
		{"a " + S + "refund" + E + " b", []web.SnippetPart{{Text: "a "}, {Text: "refund", Match: true}, {Text: " b"}}},
		{S + "x" + E + S + "y" + E, []web.SnippetPart{{Text: "x", Match: true}, {Text: "y", Match: true}}},
		{"a " + S + "open", []web.SnippetPart{{Text: "a "}, {Text: "open", Match: true}}},
	}
	for _, c := range cases {
		got := web.SplitSnippet(c.in)
		if len(got) != len(c.want) {
			t.Errorf("SplitSnippet(%q) = %+v, want %+v", c.in, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("SplitSnippet(%q) = %+v, want %+v", c.in, got, c.want)
			}
		}
	}
}

// TestEveryStateChangeIsAudited walks every registered route: each one
// that can change state either writes an audit line through the audit
// middleware, writes its own (the API, listed here), or is exempt with a
// reason. A new route fails here until someone decides which.
func TestEveryStateChangeIsAudited(t *testing.T) {
	apiAudited := map[string]string{
		"POST /api/v1/conversations/{id}/messages": web.ActionReply,
		"POST /api/v1/conversations/{id}/done":     web.ActionDone,
		"POST /api/v1/conversations/{id}/request":  web.ActionRequestControl,
	}
	wantConsole := map[string]string{
		"POST /conversations/{id}/messages":        web.ActionReply,
		"POST /conversations/{id}/done":            web.ActionDone,
		"POST /conversations/{id}/request":         web.ActionRequestControl,
		"POST /conversations/{id}/request/abandon": web.ActionAbandonRequest,
		"POST /outbox/{id}/retry":                  web.ActionRetry,
	}
	routes := web.New(web.Config{}).Routes()
	seen := map[string]bool{}
	for _, r := range routes {
		seen[r.Pattern] = true
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Pattern == "POST /webhook" {
			continue
		}
		action := web.AuditedAction(r.Pattern)
		_, exempt := web.AuditExempt[r.Pattern]
		_, api := apiAudited[r.Pattern]
		switch {
		case action != "" && exempt:
			t.Errorf("%s is both audited (%s) and exempt", r.Pattern, action)
		case action == "" && !exempt && !api:
			t.Errorf("%s changes state but writes no audit line and is not exempt", r.Pattern)
		}
		if want, ok := wantConsole[r.Pattern]; ok && action != want {
			t.Errorf("%s writes %q, want %q", r.Pattern, action, want)
		}
	}
	for p := range wantConsole {
		if !seen[p] {
			t.Errorf("console action %s is not registered", p)
		}
	}
	for p := range apiAudited {
		if !seen[p] {
			t.Errorf("API action %s is not registered", p)
		}
	}
}

var newTokenRe = regexp.MustCompile(`data-testid="new-token">([^<]+)<`)

// TestTokensAuditAndPages drives the token page, the audit log page, its
// CSV export and the dashboard over HTTP on a real database.
func TestTokensAuditAndPages(t *testing.T) {
	s := newSite(t, siteOpts{})
	ctx := context.Background()
	agent := s.signedIn(baton.RoleAgent)
	res := agent.post("/account/tokens", url.Values{"name": {"CRM sync"}})
	m := newTokenRe.FindStringSubmatch(res.body)
	if res.status != http.StatusOK || m == nil || !strings.HasPrefix(m[1], "baton_") {
		t.Fatalf("create token: %d, secret shown: %v", res.status, m != nil)
	}
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("the page with the secret is cacheable: %q", cc)
	}
	if again := agent.get("/account/tokens"); strings.Contains(again.body, m[1]) {
		t.Error("the secret is shown a second time")
	}
	toks, err := s.db.APITokens(ctx, s.users[baton.RoleAgent].ID)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens: %v %v", toks, err)
	}
	// Another agent cannot revoke it; an admin can.
	other := s.browser()
	other.login(s.victim.Email, testPassword)
	other.csrf = other.tokenFromPage()
	if res := other.post(concrete("/account/tokens/{id}/revoke", toks[0].ID), nil); res.status != http.StatusNotFound {
		t.Errorf("another agent revoked: %d", res.status)
	}
	admin := s.signedIn(baton.RoleAdmin)
	if res := admin.post(concrete("/account/tokens/{id}/revoke", toks[0].ID), nil); res.status != http.StatusSeeOther {
		t.Errorf("admin revoke: %d %s", res.status, res.body)
	}
	if _, _, err := s.db.AuthenticateAPIToken(ctx, m[1]); baton.ErrorCode(err) != baton.EUNAUTHORIZED {
		t.Errorf("revoked token still works: %v", err)
	}

	recs, _, err := s.db.AuditEntries(ctx, baton.AuditQuery{Action: web.ActionTokenCreate})
	if err != nil || len(recs) != 1 || *recs[0].ActorID != s.users[baton.RoleAgent].ID {
		t.Fatalf("create audit: %+v %v", recs, err)
	}
	if strings.Contains(recs[0].Detail, m[1]) {
		t.Fatal("the secret is in the audit log")
	}
	if _, n, _ := s.db.AuditEntries(ctx, baton.AuditQuery{Action: web.ActionTokenRevoke}); n != 1 {
		t.Errorf("revoke audit lines: %d", n)
	}

	sup := s.signedIn(baton.RoleSupervisor)
	page := sup.get("/audit?action=" + url.QueryEscape(web.ActionTokenCreate))
	if page.status != http.StatusOK || strings.Count(page.body, `data-testid="audit-row"`) != 1 || !strings.Contains(page.body, "CRM sync") {
		t.Errorf("audit page: %d, %d rows", page.status, strings.Count(page.body, `data-testid="audit-row"`))
	}
	if bad := sup.get("/audit?from=yesterday"); bad.status != http.StatusOK || !strings.Contains(bad.body, "YYYY-MM-DD") {
		t.Errorf("bad date: %d", bad.status)
	}
	export := sup.get("/audit.csv?action=" + url.QueryEscape(web.ActionTokenRevoke))
	rows, err := csv.NewReader(strings.NewReader(export.body)).ReadAll()
	if export.status != http.StatusOK || !strings.HasPrefix(export.header.Get("Content-Type"), "text/csv") || err != nil || len(rows) != 2 {
		t.Errorf("export: %d %q %v rows=%d", export.status, export.header.Get("Content-Type"), err, len(rows))
	}
	if dash := sup.get("/dashboard"); dash.status != http.StatusOK || !strings.Contains(dash.body, `data-testid="queue-count"`) {
		t.Errorf("dashboard: %d", dash.status)
	}
	if res := agent.get("/audit"); res.status != http.StatusForbidden {
		t.Errorf("agent on /audit: %d", res.status)
	}
	if res := agent.post("/logout", nil); res.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", res.status)
	}
	if recs, _, _ := s.db.AuditEntries(ctx, baton.AuditQuery{Action: web.ActionSignOut}); len(recs) != 1 || *recs[0].ActorID != s.users[baton.RoleAgent].ID {
		t.Errorf("sign-out audit: %+v", recs)
	}
}
