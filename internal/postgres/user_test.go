package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/pgtest"
	"github.com/baton-chat/baton/internal/postgres"
)

func newUser(t *testing.T, db *postgres.DB, email string, role baton.Role) *baton.User {
	t.Helper()
	u := &baton.User{Email: email, Name: "N", Role: role, PasswordHash: "$2a$04$hash"}
	if err := db.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUsers(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	u := newUser(t, db, "Ann@Example.com", baton.RoleAgent)
	if u.ID == 0 || u.Email != "ann@example.com" || u.CreatedAt.IsZero() {
		t.Fatalf("created %+v", u)
	}
	dup := &baton.User{Email: "ANN@example.com", Role: baton.RoleAdmin, PasswordHash: "x"}
	if err := db.CreateUser(ctx, dup); baton.ErrorCode(err) != baton.ECONFLICT {
		t.Fatalf("duplicate email: %v", err)
	}
	if err := db.CreateUser(ctx, &baton.User{Email: "b@example.com", Role: "root", PasswordHash: "x"}); baton.ErrorCode(err) != baton.EINVALID {
		t.Fatalf("bad role: %v", err)
	}
	got, err := db.UserByEmail(ctx, " ANN@example.com")
	if err != nil || got.ID != u.ID || got.PasswordHash != "$2a$04$hash" {
		t.Fatalf("by email: %+v %v", got, err)
	}
	if _, err := db.UserByID(ctx, 99999); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("missing id: %v", err)
	}
	if _, err := db.UserByEmail(ctx, "nobody@example.com"); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("missing email: %v", err)
	}
	role, name := baton.RoleSupervisor, "Ann B"
	up, err := db.UpdateUser(ctx, u.ID, baton.UserUpdate{Role: &role, Name: &name})
	if err != nil || up.Role != role || up.Name != name || up.PasswordHash != "$2a$04$hash" || up.Disabled {
		t.Fatalf("update: %+v %v", up, err)
	}
	if _, err := db.UpdateUser(ctx, 99999, baton.UserUpdate{Name: &name}); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("update missing: %v", err)
	}
	newUser(t, db, "admin@example.com", baton.RoleAdmin)
	if n, err := db.CountActiveAdmins(ctx); err != nil || n != 1 {
		t.Fatalf("admins: %d %v", n, err)
	}
	all, err := db.Users(ctx)
	if err != nil || len(all) != 2 || all[0].Email != "admin@example.com" {
		t.Fatalf("list: %v %v", all, err)
	}
}

func TestLoginFailuresWindow(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	u := newUser(t, db, "ann@example.com", baton.RoleAgent)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, a := range []baton.LoginAttempt{
		{At: t0, Email: "ann@example.com", IP: "192.0.2.1", Reason: "bad_password"},
		{At: t0.Add(time.Minute), Email: "ANN@example.com", IP: "192.0.2.2", Reason: "bad_password"},
		{At: t0.Add(2 * time.Minute), Email: "ann@example.com", IP: "192.0.2.1", Reason: "rate_limited"},
		{At: t0.Add(3 * time.Minute), Email: "bob@example.com", IP: "192.0.2.1", Reason: "unknown_email"},
		{At: t0.Add(4 * time.Minute), Email: "ann@example.com", IP: "192.0.2.1", Success: true, UserID: &u.ID},
	} {
		if err := db.RecordLoginAttempt(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		since             time.Time
		wantEmail, wantIP int
	}{
		{t0, 2, 2},
		{t0.Add(30 * time.Second), 1, 1},
		{t0.Add(time.Hour), 0, 0},
	}
	for _, tt := range tests {
		e, i, err := db.LoginFailures(ctx, "ann@example.com", "192.0.2.1", tt.since)
		if err != nil || e != tt.wantEmail || i != tt.wantIP {
			t.Errorf("since %v: %d, %d, %v; want %d, %d", tt.since, e, i, err, tt.wantEmail, tt.wantIP)
		}
	}
	got, _ := db.UserByID(ctx, u.ID)
	if got.LastLoginAt == nil || !got.LastLoginAt.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("last login %v", got.LastLoginAt)
	}
}

func TestSessionStoreEndsAUsersSessions(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	a := newUser(t, db, "a@example.com", baton.RoleAgent)
	b := newUser(t, db, "b@example.com", baton.RoleAgent)
	signedIn := map[string]struct {
		uid int64
		at  time.Time
	}{}
	store := db.SessionStore(func(data []byte) (int64, time.Time, bool) {
		o, ok := signedIn[string(data)]
		return o.uid, o.at, ok
	})
	exp := time.Now().Add(time.Hour)
	now := time.Now()
	signedIn["a1"] = struct {
		uid int64
		at  time.Time
	}{a.ID, now}
	signedIn["a2"] = signedIn["a1"]
	signedIn["b1"] = struct {
		uid int64
		at  time.Time
	}{b.ID, now}
	for tok, data := range map[string]string{"t-a1": "a1", "t-a2": "a2", "t-b1": "b1", "t-anon": "anon"} {
		if err := store.CommitCtx(ctx, tok, []byte(data), exp); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := db.CountUserSessions(ctx, a.ID); n != 2 {
		t.Fatalf("a has %d sessions, want 2", n)
	}
	n, err := db.DeleteUserSessions(ctx, a.ID)
	if err != nil || n != 2 {
		t.Fatalf("delete: %d %v", n, err)
	}
	if _, found, _ := store.FindCtx(ctx, "t-a1"); found {
		t.Fatal("a's session survived")
	}
	if _, found, _ := store.FindCtx(ctx, "t-b1"); !found {
		t.Fatal("b's session was ended too")
	}
	if _, found, _ := store.FindCtx(ctx, "t-anon"); !found {
		t.Fatal("the signed-out session was ended")
	}
	// A request that loaded a1 before the sign-out cannot write it back.
	if err := store.CommitCtx(ctx, "t-a1", []byte("a1"), exp); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountUserSessions(ctx, a.ID); n != 0 {
		t.Fatalf("a session came back: %d", n)
	}
	// A session signed in afterwards is fine.
	signedIn["a3"] = struct {
		uid int64
		at  time.Time
	}{a.ID, time.Now().Add(time.Millisecond)}
	if err := store.CommitCtx(ctx, "t-a3", []byte("a3"), exp); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountUserSessions(ctx, a.ID); n != 1 {
		t.Fatalf("new session not stored: %d", n)
	}
	// Disabling ends them in the same transaction, and blocks new ones.
	off := true
	if _, err := db.UpdateUser(ctx, a.ID, baton.UserUpdate{Disabled: &off}); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountUserSessions(ctx, a.ID); n != 0 {
		t.Fatalf("disabled user has %d sessions", n)
	}
	signedIn["a4"] = struct {
		uid int64
		at  time.Time
	}{a.ID, time.Now().Add(time.Hour)}
	store.CommitCtx(ctx, "t-a4", []byte("a4"), exp)
	if n, _ := db.CountUserSessions(ctx, a.ID); n != 0 {
		t.Fatalf("disabled user got a session: %d", n)
	}
	// Expired sessions are not found, and pruned.
	store.CommitCtx(ctx, "t-old", []byte("anon"), time.Now().Add(-time.Minute))
	if _, found, _ := store.FindCtx(ctx, "t-old"); found {
		t.Fatal("expired session found")
	}
	if err := db.PruneAccounts(ctx, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	var left int
	db.GetContext(ctx, &left, `select count(*) from sessions where token = 't-old'`)
	if left != 0 {
		t.Fatal("expired session not pruned")
	}
	if err := store.DeleteCtx(ctx, "t-b1"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := store.FindCtx(ctx, "t-b1"); found {
		t.Fatal("deleted session found")
	}
}

func TestAudit(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	u := newUser(t, db, "a@example.com", baton.RoleAdmin)
	if err := db.Audit(ctx, baton.AuditEntry{ActorID: &u.ID, Action: "user.create", Subject: "user:2", Detail: map[string]any{"role": "agent"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Audit(ctx, baton.AuditEntry{Action: "page.settings"}); err != nil {
		t.Fatal(err)
	}
	var role string
	if err := db.GetContext(ctx, &role, `select detail->>'role' from audit_log where action = 'user.create' and actor_user_id = $1`, u.ID); err != nil || role != "agent" {
		t.Fatalf("audit row: %q %v", role, err)
	}
}
