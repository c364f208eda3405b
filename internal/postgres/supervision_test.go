package postgres_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/pgtest"
	"github.com/baton-chat/baton/internal/postgres"
)

const (
	fixBaton   = "1001"
	fixPrimary = "2002"
)

// fixture inserts a Page, conversations and messages with plain SQL.
type fixture struct {
	t  *testing.T
	db *postgres.DB
}

func newFixture(t *testing.T) *fixture {
	db := pgtest.DB(t)
	if _, err := db.Exec(`insert into pages (page_id, baton_app_id, primary_app_id) values ('p1', $1, $2)`, fixBaton, fixPrimary); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, db: db}
}

func (f *fixture) conversation(psid, first, last, status string, openedAt *time.Time) int64 {
	f.t.Helper()
	var id int64
	if err := f.db.Get(&id, `
		insert into conversations (page_id, psid, first_name, last_name, status, opened_at)
		values ('p1', $1, $2, $3, $4, $5) returning id`, psid, first, last, status, openedAt); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) message(conv int64, author, text string, ts int64) {
	f.t.Helper()
	if _, err := f.db.Exec(`
		insert into messages (conversation_id, mid, author, text, part, timestamp_ms)
		values ($1, 'm' || gen_random_uuid(), $2, $3, 'live', $4)`, conv, author, text, ts); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) handover(conv int64, kind, from, to string, ts int64) {
	f.t.Helper()
	if _, err := f.db.Exec(`
		insert into handovers (conversation_id, kind, from_app_id, to_app_id, timestamp_ms)
		values ($1, $2, $3, $4, $5)`, conv, kind, from, to, ts); err != nil {
		f.t.Fatal(err)
	}
}

func TestSearchRankingAndSnippets(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	open := f.conversation("111", "Maria", "Garcia", "open", nil)
	other := f.conversation("222", "John", "Smith", "open", nil)
	bot := f.conversation("333", "Bea", "Bot", "bot", nil)
	f.message(open, "user", "I want a refund, the refund for my refunded order never came", 1000)
	f.message(other, "user", "Where is my parcel? Also a refund maybe", 2000)
	f.message(other, "user", "opening hours please", 3000)
	f.message(bot, "user", "refund refund refund <script>alert(1)</script>", 4000)

	hits, err := f.db.SearchMessages(ctx, "refunds", baton.SearchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 2 {
		t.Fatalf("agent search: %d hits, want 2 (bot-owned threads hidden): %+v", len(hits), hits)
	}
	if hits[0].ConversationID != open || hits[1].ConversationID != other {
		t.Errorf("ranking: %d then %d, want the message that says refund three times first", hits[0].ConversationID, hits[1].ConversationID)
	}
	if hits[0].Name != "Maria Garcia" || hits[0].Rank <= hits[1].Rank {
		t.Errorf("hit = %+v", hits[0])
	}
	if !strings.Contains(hits[1].Snippet, baton.SnippetStart+"refund"+baton.SnippetStop) {
		t.Errorf("snippet %q does not mark the match", hits[1].Snippet)
	}
	all, err := f.db.SearchMessages(ctx, "refund", baton.SearchOptions{IncludeBot: true})
	if err != nil || len(all) != 3 {
		t.Fatalf("supervisor search: %d hits, %v", len(all), err)
	}
	if strings.Contains(all[0].Snippet, "<b>") {
		t.Errorf("snippet carries HTML markers: %q", all[0].Snippet)
	}
	if _, err := f.db.SearchMessages(ctx, "  ", baton.SearchOptions{}); baton.ErrorCode(err) != baton.EINVALID {
		t.Errorf("empty query: %v", err)
	}
	// Web-search syntax: exclusion and phrases parse, never error.
	for _, q := range []string{"refund -parcel", `"opening hours"`, "refund or parcel", `'":&|!(`} {
		if _, err := f.db.SearchMessages(ctx, q, baton.SearchOptions{}); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
	excl, _ := f.db.SearchMessages(ctx, "refund -parcel", baton.SearchOptions{})
	if len(excl) != 1 || excl[0].ConversationID != open {
		t.Errorf("exclusion: %+v", excl)
	}

	cases := []struct {
		search string
		want   []int64
	}{
		{"refund", []int64{open, other}},
		{"opening hours", []int64{other}},
		{"maria", []int64{open}},
		{"Smi", []int64{other}},
		{"222", []int64{other}},
		{"nothing-like-this", nil},
	}
	for _, c := range cases {
		list, err := f.db.ListConversations(ctx, baton.ConversationFilter{Folder: baton.FolderInbox, Search: c.search})
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, x := range list {
			got = append(got, x.ID)
		}
		if len(got) != len(c.want) {
			t.Errorf("list %q = %v, want %v", c.search, got, c.want)
			continue
		}
		for _, id := range c.want {
			found := false
			for _, g := range got {
				found = found || g == id
			}
			if !found {
				t.Errorf("list %q = %v, want %v", c.search, got, c.want)
			}
		}
	}
}

func TestAuditEntriesFilters(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	ann := newUser(t, db, "ann@example.com", baton.RoleAgent)
	bob := newUser(t, db, "bob@example.com", baton.RoleSupervisor)
	day := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	entries := []baton.AuditEntry{
		{At: day, ActorID: &ann.ID, Action: "reply", Subject: "conversation:1"},
		{At: day.Add(time.Hour), ActorID: &bob.ID, Action: "done", Subject: "conversation:1", Detail: map[string]any{"outcome": "resolved"}},
		{At: day.Add(24 * time.Hour), Action: "handover.pass", Subject: "conversation:2"},
		{At: day.Add(48 * time.Hour), ActorID: &ann.ID, Action: "reply", Subject: "conversation:2"},
	}
	for _, e := range entries {
		if err := db.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		q       baton.AuditQuery
		actions []string
	}{
		{"all, newest first", baton.AuditQuery{}, []string{"reply", "handover.pass", "done", "reply"}},
		{"by action", baton.AuditQuery{Action: "reply"}, []string{"reply", "reply"}},
		{"by action prefix", baton.AuditQuery{Action: "handover."}, []string{"handover.pass"}},
		{"by actor", baton.AuditQuery{ActorID: bob.ID}, []string{"done"}},
		{"by subject", baton.AuditQuery{Subject: "conversation:1"}, []string{"done", "reply"}},
		{"by date range", baton.AuditQuery{From: day.Add(30 * time.Minute), To: day.Add(25 * time.Hour)}, []string{"handover.pass", "done"}},
		{"page two", baton.AuditQuery{Limit: 2, Offset: 2}, []string{"done", "reply"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, total, err := db.AuditEntries(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Action)
			}
			if strings.Join(got, ",") != strings.Join(c.actions, ",") {
				t.Errorf("actions = %v, want %v", got, c.actions)
			}
			if c.q.Limit == 0 && total != len(c.actions) {
				t.Errorf("total = %d, want %d", total, len(c.actions))
			}
		})
	}
	recs, _, _ := db.AuditEntries(ctx, baton.AuditQuery{ActorID: bob.ID})
	if len(recs) != 1 || recs[0].ActorName != "N" || !strings.Contains(recs[0].Detail, `"outcome": "resolved"`) {
		t.Errorf("record = %+v", recs[0])
	}
}

func TestAPITokens(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	ann := newUser(t, db, "ann@example.com", baton.RoleAgent)
	bob := newUser(t, db, "bob@example.com", baton.RoleAgent)
	if _, _, err := db.CreateAPIToken(ctx, ann.ID, "  "); baton.ErrorCode(err) != baton.EINVALID {
		t.Errorf("unnamed token: %v", err)
	}
	tok, secret, err := db.CreateAPIToken(ctx, ann.ID, "CRM")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "baton_") || len(secret) < 40 || tok.LastUsedAt != nil {
		t.Fatalf("token %+v secret %q", tok, secret)
	}
	var stored []byte
	if err := db.Get(&stored, `select token_hash from api_tokens where id = $1`, tok.ID); err != nil || strings.Contains(string(stored), secret) {
		t.Fatalf("the secret must not be stored: %v", err)
	}
	u, got, err := db.AuthenticateAPIToken(ctx, secret)
	if err != nil || u.ID != ann.ID || got.ID != tok.ID || got.LastUsedAt == nil {
		t.Fatalf("authenticate: %+v %+v %v", u, got, err)
	}
	for _, bad := range []string{"", "baton_nope", secret + "x", "Bearer " + secret} {
		if _, _, err := db.AuthenticateAPIToken(ctx, bad); baton.ErrorCode(err) != baton.EUNAUTHORIZED {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := db.RevokeAPIToken(ctx, tok.ID, bob.ID); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Errorf("another user revoked the token: %v", err)
	}
	if list, _ := db.APITokens(ctx, bob.ID); len(list) != 0 {
		t.Errorf("bob sees %d tokens", len(list))
	}
	revoked, err := db.RevokeAPIToken(ctx, tok.ID, ann.ID)
	if err != nil || revoked.RevokedAt == nil {
		t.Fatalf("revoke: %+v %v", revoked, err)
	}
	if _, _, err := db.AuthenticateAPIToken(ctx, secret); baton.ErrorCode(err) != baton.EUNAUTHORIZED {
		t.Errorf("revoked token accepted: %v", err)
	}
	// Admins revoke any (owner 0); a disabled user's token stops working.
	tok2, secret2, _ := db.CreateAPIToken(ctx, bob.ID, "script")
	disabled := true
	if _, err := db.UpdateUser(ctx, bob.ID, baton.UserUpdate{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.AuthenticateAPIToken(ctx, secret2); baton.ErrorCode(err) != baton.EUNAUTHORIZED {
		t.Errorf("disabled user's token accepted: %v", err)
	}
	if _, err := db.RevokeAPIToken(ctx, tok2.ID, 0); err != nil {
		t.Errorf("admin revoke: %v", err)
	}
	if all, _ := db.APITokens(ctx, 0); len(all) != 2 {
		t.Errorf("all tokens: %d", len(all))
	}
}

func TestTeamStats(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	ann := newUser(t, f.db, "ann@example.com", baton.RoleAgent)

	// Answered 2 min after the pass, handed back after 10 min.
	opened := now.Add(-3 * time.Hour)
	a := f.conversation("1", "A", "", "closed", &opened)
	f.handover(a, "pass", fixPrimary, fixBaton, ms(-3*time.Hour))
	f.message(a, "agent", "hello", ms(-3*time.Hour+2*time.Minute))
	f.handover(a, "done", fixBaton, fixPrimary, ms(-3*time.Hour+10*time.Minute))
	// Answered after 4 min, still open, assigned to Ann.
	opened2 := now.Add(-time.Hour)
	b := f.conversation("2", "B", "", "open", &opened2)
	f.handover(b, "pass", fixPrimary, fixBaton, ms(-time.Hour))
	f.message(b, "agent", "hi", ms(-time.Hour+4*time.Minute))
	// Waiting 20 min with no answer.
	opened3 := now.Add(-20 * time.Minute)
	c := f.conversation("3", "C", "", "open", &opened3)
	f.handover(c, "pass", fixPrimary, fixBaton, ms(-20*time.Minute))
	// Another answered at 6 min, for an odd count of first responses.
	opened4 := now.Add(-2 * time.Hour)
	d := f.conversation("4", "D", "", "closed", &opened4)
	f.handover(d, "pass", fixPrimary, fixBaton, ms(-2*time.Hour))
	f.message(d, "agent", "hey", ms(-2*time.Hour+6*time.Minute))
	f.handover(d, "take", fixBaton, fixPrimary, ms(-2*time.Hour+30*time.Minute))
	if _, err := f.db.Exec(`update conversations set assigned_user_id = $1 where id = $2`, ann.ID, b); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(`update conversations set done_outcome = 'resolved', closed_at = $2 where id = $1`, a, now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}

	st, err := f.db.TeamStats(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if st.Open != 2 || st.Queue != 1 || st.OldestWait != 20*time.Minute {
		t.Errorf("open %d queue %d oldest %v, want 2, 1, 20m", st.Open, st.Queue, st.OldestWait)
	}
	if st.MedianFirstResponse != 4*time.Minute {
		t.Errorf("median first response = %v, want 4m (of 2m, 4m, 6m)", st.MedianFirstResponse)
	}
	if st.MedianHandle != 20*time.Minute {
		t.Errorf("median handle = %v, want 20m (of 10m, 30m)", st.MedianHandle)
	}
	if st.Outcomes["resolved"] != 1 || len(st.Outcomes) != 1 {
		t.Errorf("outcomes = %v", st.Outcomes)
	}
	if len(st.Hours) != 24 || !st.Hours[23].Hour.Equal(now.Truncate(time.Hour)) {
		t.Fatalf("hours: %d, last %v", len(st.Hours), st.Hours[len(st.Hours)-1].Hour)
	}
	in, out := 0, 0
	for _, h := range st.Hours {
		in += h.In
		out += h.Out
	}
	if in != 4 || out != 2 || st.Hours[20].In != 1 || st.Hours[20].Out != 1 {
		t.Errorf("in %d out %d; 09:00 = %+v", in, out, st.Hours[20])
	}
	var load *baton.AgentLoad
	for i := range st.Agents {
		if st.Agents[i].UserID == ann.ID {
			load = &st.Agents[i]
		}
	}
	if load == nil || load.Assigned != 1 {
		t.Errorf("ann's load = %+v", load)
	}
}

func TestWebhookHandoversAreAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	conv := f.conversation("9", "Z", "", "bot", nil)
	err := f.db.Ingest(ctx, func(tx baton.IngestTx) error {
		return tx.InsertHandovers(ctx, []*baton.Handover{
			{ConversationID: conv, Kind: "pass", FromAppID: fixPrimary, ToAppID: fixBaton, Metadata: `{"reason":"asked_for_human"}`, TimestampMS: 5},
			{ConversationID: conv, Kind: "take", FromAppID: fixBaton, ToAppID: fixPrimary, TimestampMS: 6},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, total, err := f.db.AuditEntries(ctx, baton.AuditQuery{Action: "handover."})
	if err != nil || total != 2 {
		t.Fatalf("audit: %d lines, %v", total, err)
	}
	var pass map[string]any
	for _, r := range recs {
		if r.Action == "handover.pass" {
			json.Unmarshal([]byte(r.Detail), &pass)
		}
		if r.Subject != "conversation:"+strconv.FormatInt(conv, 10) || r.ActorID != nil {
			t.Errorf("record %+v", r)
		}
	}
	if pass["metadata"] != `{"reason":"asked_for_human"}` || pass["to_app_id"] != fixBaton {
		t.Errorf("pass detail = %v", pass)
	}
	// A failed ingest transaction leaves no audit line behind.
	_ = f.db.Ingest(ctx, func(tx baton.IngestTx) error {
		if err := tx.InsertHandovers(ctx, []*baton.Handover{{ConversationID: conv, Kind: "pass", TimestampMS: 7}}); err != nil {
			return err
		}
		return baton.Errorf(baton.EINTERNAL, "boom")
	})
	if _, total, _ := f.db.AuditEntries(ctx, baton.AuditQuery{Action: "handover."}); total != 2 {
		t.Errorf("rolled-back handover audited: %d lines", total)
	}
}
