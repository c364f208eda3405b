package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/baton-chat/baton/migrations"
	"github.com/jmoiron/sqlx"
)

// migrationLock is the advisory lock key that serialises migrations across
// instances starting at once ("baton" in ASCII).
const migrationLock = 0x626174_6f6e

// Migrate applies every migration not yet recorded, each in its own
// transaction, holding an advisory lock so that concurrent instances are
// safe. It returns the names it applied.
func (db *DB) Migrate(ctx context.Context) ([]string, error) {
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, mapError(fmt.Errorf("migrate: %w", err))
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `select pg_advisory_lock($1)`, migrationLock); err != nil {
		return nil, mapError(fmt.Errorf("migrate: lock: %w", err))
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `select pg_advisory_unlock($1)`, migrationLock)
	if _, err := conn.ExecContext(ctx, `
		create table if not exists schema_migrations (
			name       text primary key,
			applied_at timestamptz not null default now()
		)`); err != nil {
		return nil, fmt.Errorf("migrate: create table: %w", err)
	}
	pending, err := pendingMigrations(ctx, conn)
	if err != nil {
		return nil, err
	}
	var applied []string
	for _, name := range pending {
		body, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			return applied, fmt.Errorf("migrate: read %s: %w", name, err)
		}
		tx, err := conn.BeginTxx(ctx, nil)
		if err != nil {
			return applied, fmt.Errorf("migrate: begin %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migrate: %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `insert into schema_migrations (name) values ($1)`, name); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migrate: record %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return applied, fmt.Errorf("migrate: commit %s: %w", name, err)
		}
		applied = append(applied, name)
	}
	return applied, nil
}

// PendingMigrations lists the migrations the database lacks; a server
// started with migrations disabled refuses to run when it is not empty.
func (db *DB) PendingMigrations(ctx context.Context) ([]string, error) {
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, mapError(fmt.Errorf("check migrations: %w", err))
	}
	defer conn.Close()
	var exists bool
	if err := conn.GetContext(ctx, &exists, `select to_regclass('schema_migrations') is not null`); err != nil {
		return nil, mapError(fmt.Errorf("check migrations: %w", err))
	}
	if !exists {
		return allMigrations()
	}
	return pendingMigrations(ctx, conn)
}

func allMigrations() ([]string, error) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

func pendingMigrations(ctx context.Context, conn *sqlx.Conn) ([]string, error) {
	all, err := allMigrations()
	if err != nil {
		return nil, err
	}
	var done []string
	if err := conn.SelectContext(ctx, &done, `select name from schema_migrations`); err != nil {
		return nil, mapError(fmt.Errorf("read schema_migrations: %w", err))
	}
	have := map[string]bool{}
	for _, n := range done {
		have[n] = true
	}
	var pending []string
	for _, n := range all {
		if !have[n] && strings.HasSuffix(n, ".sql") {
			pending = append(pending, n)
		}
	}
	return pending, nil
}
