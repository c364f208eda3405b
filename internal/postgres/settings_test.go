package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/pgtest"
)

func TestPageSettings(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	env := baton.PageSettings{PageID: "100", PageToken: "tok-env-1234", AppSecret: "sec-env-5678", VerifyToken: "ver-env",
		BatonAppID: "200", HumanAgent: true}
	if err := db.SeedPageSettings(ctx, env); err != nil {
		t.Fatal(err)
	}
	s := db.Settings("100")
	if a, v := s.Secrets(); a != "" || v != "" {
		t.Fatalf("secrets before the first load: %q %q", a, v)
	}
	got, err := s.PageSettings(ctx)
	if err != nil || got.AppSecret != "sec-env-5678" || got.PageToken != "tok-env-1234" || got.BatonAppID != "200" || !got.HumanAgent {
		t.Fatalf("seeded: %+v %v", got, err)
	}
	if a, v := s.Secrets(); a != "sec-env-5678" || v != "ver-env" {
		t.Fatalf("secrets: %q %q", a, v)
	}
	// An admin changes the secret; empty fields keep what is stored.
	if err := s.SavePageSettings(ctx, baton.PageSettings{AppSecret: "sec-admin-9999", BatonAppID: "200", PrimaryAppID: "300"}); err != nil {
		t.Fatal(err)
	}
	if a, v := s.Secrets(); a != "sec-admin-9999" || v != "ver-env" {
		t.Fatalf("secrets after save: %q %q", a, v)
	}
	got, _ = s.PageSettings(ctx)
	if got.PageToken != "tok-env-1234" || got.PrimaryAppID != "300" || got.HumanAgent {
		t.Fatalf("after save: %+v", got)
	}
	// A restart seeds again: what the admin saved wins.
	if err := db.SeedPageSettings(ctx, env); err != nil {
		t.Fatal(err)
	}
	got, _ = s.PageSettings(ctx)
	if got.AppSecret != "sec-admin-9999" || got.PrimaryAppID != "300" {
		t.Fatalf("seed overwrote the admin's settings: %+v", got)
	}
	for _, bad := range []baton.PageSettings{{BatonAppID: ""}, {BatonAppID: "12a"}, {BatonAppID: "1", PrimaryAppID: "x"}} {
		if err := s.SavePageSettings(ctx, bad); baton.ErrorCode(err) != baton.EINVALID {
			t.Errorf("save %+v: %v, want invalid", bad, err)
		}
	}
	if err := db.Settings("999").SavePageSettings(ctx, baton.PageSettings{BatonAppID: "1"}); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatalf("unknown page: %v", err)
	}
}

func TestSettingsSecretsRefreshWhenStale(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	if err := db.SeedPageSettings(ctx, baton.PageSettings{PageID: "100", AppSecret: "old-secret", BatonAppID: "200"}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	mine, theirs := db.Settings("100"), db.Settings("100")
	if _, err := mine.PageSettings(ctx); err != nil {
		t.Fatal(err)
	}
	// Another instance saves a new secret.
	if err := theirs.SavePageSettings(ctx, baton.PageSettings{AppSecret: "new-secret", BatonAppID: "200"}); err != nil {
		t.Fatal(err)
	}
	if a, _ := mine.Secrets(); a != "old-secret" {
		t.Fatalf("fresh cache: %q", a)
	}
	now = now.Add(mine.TTL + time.Second)
	mine.Secrets() // stale: starts one background refresh
	// The deadline only keeps a broken refresh from hanging the run.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if a, _ := mine.Secrets(); a == "new-secret" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stale secrets never refreshed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// §13.3: MESSENGER_PRIMARY_APP_ID beats a Primary learnt from app_roles;
// one an admin saves is kept across restarts; clearing it lets Baton learn.
func TestPrimaryPinned(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	page := func() *baton.Page {
		t.Helper()
		p, err := db.Page(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	seed := func(primary string) {
		t.Helper()
		if err := db.SeedPageSettings(ctx, baton.PageSettings{PageID: "p1", BatonAppID: "10", PrimaryAppID: primary}); err != nil {
			t.Fatal(err)
		}
	}
	seed("")
	if p := page(); p.PrimaryPinned || p.PrimaryAppID != "" {
		t.Fatalf("unconfigured: %+v", p)
	}
	// Learnt (as ingest saves it), then configured: configuration wins.
	if _, err := db.Exec(`update pages set primary_app_id = '77' where page_id = 'p1'`); err != nil {
		t.Fatal(err)
	}
	seed("20")
	if p := page(); !p.PrimaryPinned || p.PrimaryAppID != "20" {
		t.Fatalf("after MESSENGER_PRIMARY_APP_ID=20: %+v, want 20, pinned", p)
	}
	// Saving the form with a learnt value unchanged keeps learning.
	set := db.Settings("p1")
	if _, err := db.Exec(`update pages set primary_app_id = '', primary_pinned = false where page_id = 'p1'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`update pages set primary_app_id = '77' where page_id = 'p1'`); err != nil {
		t.Fatal(err)
	}
	cur, err := set.PageSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.SavePageSettings(ctx, *cur); err != nil {
		t.Fatal(err)
	}
	if p := page(); p.PrimaryPinned || p.PrimaryAppID != "77" {
		t.Fatalf("after saving the learnt value unchanged: %+v, want 77, not pinned", p)
	}
	// An admin's new choice is kept across a restart with the old environment.
	cur.PrimaryAppID = "30"
	if err := set.SavePageSettings(ctx, *cur); err != nil {
		t.Fatal(err)
	}
	seed("20")
	if p := page(); !p.PrimaryPinned || p.PrimaryAppID != "30" {
		t.Fatalf("after the admin saved 30 and a restart: %+v, want 30, pinned", p)
	}
	// A batch that read the Page before the pin cannot write its old
	// Primary over it.
	stale := *page()
	stale.PrimaryPinned, stale.PrimaryAppID = false, "77"
	if err := db.Ingest(ctx, func(tx baton.IngestTx) error { return tx.SavePage(ctx, &stale) }); err != nil {
		t.Fatal(err)
	}
	if p := page(); p.PrimaryAppID != "30" {
		t.Fatalf("after a stale batch saved the Page: %+v, want 30 kept", p)
	}
	cur.PrimaryAppID = ""
	if err := set.SavePageSettings(ctx, *cur); err != nil {
		t.Fatal(err)
	}
	if p := page(); p.PrimaryPinned {
		t.Fatalf("after the admin cleared it: %+v, want unpinned", p)
	}
}
