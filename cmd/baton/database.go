package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/baton-chat/baton/internal/pgserver"
	"github.com/baton-chat/baton/internal/postgres"
)

// openDatabase connects to DATABASE_URL, or starts (or joins) the private
// PostgreSQL under BATON_DATA when it is unset. close leaves the private
// server (the last user stops it).
func openDatabase(ctx context.Context, c Config) (db *postgres.DB, closeFn func(), err error) {
	dsn := c.DatabaseURL
	var srv *pgserver.Server
	if dsn == "" {
		srv, err = pgserver.Start(ctx, filepath.Join(c.Data, "pg"), pgserver.Options{})
		if err != nil {
			return nil, nil, err
		}
		if err := ensureDatabase(ctx, srv, "baton"); err != nil {
			srv.Stop()
			return nil, nil, err
		}
		dsn = srv.DSN("baton")
	}
	db, err = postgres.Open(ctx, dsn)
	if err != nil {
		if srv != nil {
			srv.Stop()
		}
		return nil, nil, err
	}
	return db, func() {
		db.Close()
		if srv != nil {
			srv.Stop()
		}
	}, nil
}

func ensureDatabase(ctx context.Context, srv *pgserver.Server, name string) error {
	admin, err := postgres.Open(ctx, srv.DSN("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close()
	var exists bool
	if err := admin.GetContext(ctx, &exists, `select exists(select 1 from pg_database where datname = $1)`, name); err != nil {
		return fmt.Errorf("look up database: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := admin.ExecContext(ctx, `create database `+name); err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// prepareSchema migrates, or with migrations off refuses a stale schema.
func prepareSchema(ctx context.Context, db *postgres.DB, migrate bool) error {
	if migrate {
		_, err := db.Migrate(ctx)
		return err
	}
	pending, err := db.PendingMigrations(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("the database schema is out of date (%d migrations pending, first %s): run `baton migrate` or start with BATON_MIGRATE=true", len(pending), pending[0])
	}
	return nil
}
