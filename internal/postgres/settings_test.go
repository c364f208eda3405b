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
