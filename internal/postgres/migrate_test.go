package postgres_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/baton-chat/baton/internal/pgtest"
	"github.com/baton-chat/baton/internal/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// A fresh test database is already migrated: nothing is pending, and
// migrating again, from several instances at once, applies nothing twice.
func TestMigrateConcurrentIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := postgres.Open(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			applied, err := db.Migrate(ctx)
			if err == nil && len(applied) != 0 {
				t.Errorf("applied %v on a migrated database", applied)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	db, _ := postgres.Open(ctx, dsn)
	defer db.Close()
	pending, err := db.PendingMigrations(ctx)
	if err != nil || len(pending) != 0 {
		t.Fatalf("pending = %v, %v", pending, err)
	}
}

// An empty database reports every migration as pending until migrated.
func TestMigrateFromEmpty(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	if _, err := db.Exec(`drop schema public cascade; create schema public`); err != nil {
		t.Fatal(err)
	}
	pending, err := db.PendingMigrations(ctx)
	if err != nil || len(pending) == 0 {
		t.Fatalf("pending = %v, %v; want all", pending, err)
	}
	applied, err := db.Migrate(ctx)
	if err != nil || len(applied) != len(pending) {
		t.Fatalf("applied %v, %v; want %v", applied, err, pending)
	}
	if pending, _ := db.PendingMigrations(ctx); len(pending) != 0 {
		t.Fatalf("still pending: %v", pending)
	}
}
