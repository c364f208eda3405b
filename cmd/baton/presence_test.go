package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/baton-chat/baton/internal/account"
	"github.com/baton-chat/baton/internal/baton"
)

// Two agents open the same conversation: each sees the other viewing,
// never themselves; a tab that stops its heartbeat drops out.
func TestPresenceShowsOtherViewers(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	if _, err := s.inst.acct.service.CreateUser(ctx, nil, account.NewUser{Email: "ana@example.test", Name: "Ana Lopez",
		Role: baton.RoleAgent, Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	psid := handedOver(t, s, "Mia", "Wong")
	id := strconv.FormatInt(s.conversationOf(psid).ID, 10)
	addr := s.inst.Addr()
	admin := rtSignIn(t, addr, "admin@example.test", "correct horse battery")
	ana := rtSignIn(t, addr, "ana@example.test", "correct horse battery")

	get := func(ck *http.Cookie, path string) string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		req.AddCookie(ck)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	beat := func(ck *http.Cookie) {
		page := get(ck, "/conversations/"+id)
		m := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no CSRF token on the page")
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/conversations/"+id+"/viewing", nil)
		req.AddCookie(ck)
		req.Header.Set("X-CSRF-Token", m[1])
		req.Header.Set("X-Requested-With", "fetch")
		req.Header.Set("Origin", "http://"+addr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("heartbeat: %d", resp.StatusCode)
		}
	}
	viewers := func(ck *http.Cookie) string {
		m := regexp.MustCompile(`data-testid="viewers"[^>]*>([^<]*)<`).FindStringSubmatch(get(ck, "/conversations/"+id+"?fragment=live"))
		if m == nil {
			return ""
		}
		return strings.TrimSpace(m[1])
	}

	beat(ana)
	if got := viewers(admin); got != "Ana Lopez is viewing" {
		t.Errorf("the admin sees %q, want Ana viewing", got)
	}
	if got := viewers(ana); got != "" {
		t.Errorf("Ana sees %q: nobody else is viewing", got)
	}
	beat(admin)
	if got := viewers(ana); !strings.HasSuffix(got, " is viewing") || strings.Contains(got, "Ana") {
		t.Errorf("Ana sees %q, want the admin viewing", got)
	}
	// Ana's tab closed a minute ago: she no longer shows.
	if _, err := s.inst.db.ExecContext(ctx, `update viewers set seen_at = now() - interval '1 minute' where user_id = (select id from users where email = 'ana@example.test')`); err != nil {
		t.Fatal(err)
	}
	if got := viewers(admin); got != "" {
		t.Errorf("after Ana left the admin sees %q", got)
	}
}
