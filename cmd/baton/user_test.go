package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/pgtest"
	"github.com/baton-chat/baton/internal/postgres"
)

// userCLI runs `baton user …` against dsn, with a low bcrypt cost so the
// race detector does not make each hash take seconds.
func userCLI(t *testing.T, dsn, password string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	env := Env{"DATABASE_URL": dsn, "BATON_PASSWORD_COST": "4"}
	if password != "" {
		env["BATON_USER_PASSWORD"] = password
	}
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"user"}, args...), env, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUserCommand(t *testing.T) {
	dsn := pgtest.DSN(t)
	const pw = "a good long password"
	steps := []struct {
		name     string
		password string
		args     []string
		code     int
		out      string
	}{
		{"add", pw, []string{"add", "Ann@Example.com", "--name", "Ann A", "--role=supervisor"}, 0, "added ann@example.com (supervisor)"},
		{"add an admin", pw, []string{"add", "boss@example.com", "--role", "admin"}, 0, "added boss@example.com (admin)"},
		{"duplicate", pw, []string{"add", "ann@example.com"}, 2, "already exists"},
		{"short password", "short", []string{"add", "bob@example.com"}, 2, "at least 10 characters"},
		{"bad role", pw, []string{"add", "bob@example.com", "--role", "root"}, 2, "Unknown role"},
		{"unknown flag", pw, []string{"add", "bob@example.com", "--admin"}, 2, "unknown flag"},
		{"missing email", pw, []string{"add"}, 2, "wrong arguments"},
		{"set role", "", []string{"set-role", "ann@example.com", "agent"}, 0, "ann@example.com is now agent"},
		{"disable", "", []string{"disable", "ann@example.com"}, 0, "disabled ann@example.com"},
		{"unknown user", "", []string{"disable", "nobody@example.com"}, 2, "User not found."},
		{"last admin kept", "", []string{"disable", "boss@example.com"}, 2, "at least one enabled admin"},
		{"list", "", []string{"list"}, 0, "ann@example.com"},
		{"enable", "", []string{"enable", "ann@example.com"}, 0, "enabled ann@example.com"},
		{"set password", "another long password", []string{"set-password", "ann@example.com"}, 0, "ended 0 sessions"},
	}
	for _, st := range steps {
		code, out, errOut := userCLI(t, dsn, st.password, st.args...)
		if code != st.code || !strings.Contains(out+errOut, st.out) {
			t.Fatalf("%s: exit %d, %q %q; want exit %d and %q", st.name, code, out, errOut, st.code, st.out)
		}
		if strings.Contains(out+errOut, st.password) && st.password != "" {
			t.Fatalf("%s: the password was printed", st.name)
		}
	}
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ann, err := db.UserByEmail(context.Background(), "ann@example.com")
	if err != nil || ann.Name != "Ann A" || ann.Role != baton.RoleAgent || ann.Disabled || !strings.HasPrefix(ann.PasswordHash, "$2a$04$") {
		t.Fatalf("ann: %+v %v", ann, err)
	}
	_, out, _ := userCLI(t, dsn, "", "list")
	if !strings.Contains(out, "EMAIL") || !strings.Contains(out, "boss@example.com") || strings.Contains(out, "$2a$") {
		t.Fatalf("list:\n%s", out)
	}
	if code, out, _ := userCLI(t, dsn, "", "help"); code != 0 || !strings.Contains(out, "set-password") {
		t.Fatalf("help: %d %s", code, out)
	}
}

func TestPasswordCostConfig(t *testing.T) {
	tests := []struct {
		v    string
		want int
		ok   bool
	}{
		{"", 12, true},
		{"4", 4, true},
		{"14", 14, true},
		{"3", 0, false},
		{"32", 0, false},
		{"twelve", 0, false},
	}
	for _, tt := range tests {
		c, err := loadConfig(Env{"BATON_PASSWORD_COST": tt.v}, false)
		if (err == nil) != tt.ok || (tt.ok && c.PasswordCost != tt.want) {
			t.Errorf("BATON_PASSWORD_COST=%q: cost %d, err %v", tt.v, c.PasswordCost, err)
		}
	}
}

func TestSetUpAccountsBootstrap(t *testing.T) {
	db := pgtest.DB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := Env{
		"MESSENGER_APP_ID": "2500000002", "MESSENGER_APP_SECRET": "env-secret-1234", "MESSENGER_VERIFY_TOKEN": "verify",
		"MESSENGER_PAGE_ID": "100200300", "MESSENGER_PAGE_TOKEN": "page-token",
		"BATON_ADMIN_EMAIL": "Root@Example.com", "BATON_ADMIN_PASSWORD": "first admin password",
		"BATON_PASSWORD_COST": "4", "BATON_PUBLIC_URL": "https://baton.example.com/",
	}
	c, err := loadConfig(env, true)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a, err := setUpAccounts(ctx, c, db, newLogger(c, &logs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.service.Login(ctx, "root@example.com", "first admin password", "127.0.0.1"); err != nil {
		t.Fatalf("bootstrap admin cannot sign in: %v", err)
	}
	if s, v := a.settings.Secrets(); s != "env-secret-1234" || v != "verify" {
		t.Fatalf("secrets %q %q", s, v)
	}
	if len(a.origins) != 1 || a.origins[0] != "https://baton.example.com" {
		t.Fatalf("origins %v", a.origins)
	}
	// An admin rotates the secret; a restart with the old environment and
	// another admin password changes neither.
	if err := a.settings.SavePageSettings(ctx, baton.PageSettings{AppSecret: "rotated-9999", BatonAppID: "2500000002"}); err != nil {
		t.Fatal(err)
	}
	c.AdminPassword = "some other password"
	a, err = setUpAccounts(ctx, c, db, newLogger(c, &logs))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := a.settings.Secrets(); s != "rotated-9999" {
		t.Fatalf("the environment overwrote the admin's secret: %q", s)
	}
	if _, err := a.service.Login(ctx, "root@example.com", "first admin password", "127.0.0.1"); err != nil {
		t.Fatalf("restart changed the admin's password: %v", err)
	}
	users, _ := db.Users(ctx)
	if len(users) != 1 || users[0].Role != baton.RoleAdmin {
		t.Fatalf("users %+v", users)
	}
	for _, secret := range []string{"first admin password", "some other password", "env-secret-1234"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("logged %q", secret)
		}
	}
	if !strings.Contains(logs.String(), "BATON_PASSWORD_COST is below 12") {
		t.Fatal("no warning for an insecure bcrypt cost")
	}
}
