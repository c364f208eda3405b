// Package postgres implements Baton's storage services on PostgreSQL with
// sqlx and lib/pq. One file per aggregate; PostgreSQL errors are mapped to
// domain codes here so no other layer sees a *pq.Error.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// DB is Baton's database handle.
type DB struct {
	*sqlx.DB
	// DSN is what Open connected with; LISTEN needs its own connection.
	DSN string
	// Now is the clock used for timestamps Baton writes itself.
	Now func() time.Time

	stmts stmtCache
}

// stmtCache holds the hot path's prepared statements, one per query text.
// database/sql prepares each lazily on every pooled connection that runs
// it, and again on new connections after a database restart.
type stmtCache struct {
	db *sqlx.DB
	mu sync.Mutex
	m  map[string]*sqlx.Stmt
}

// prepared returns q prepared, bound to tx.
func (c *stmtCache) prepared(ctx context.Context, tx *sqlx.Tx, q string) (*sqlx.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[q]
	c.mu.Unlock()
	if !ok {
		// The pool-wide statement; binding it to tx below prepares it on
		// tx's connection too, once per connection.
		var err error
		if st, err = c.db.PreparexContext(ctx, q); err != nil {
			return nil, mapError(fmt.Errorf("prepare: %w", err))
		}
		c.mu.Lock()
		if prev, raced := c.m[q]; raced {
			st.Close()
			st = prev
		} else {
			if c.m == nil {
				c.m = map[string]*sqlx.Stmt{}
			}
			c.m[q] = st
		}
		c.mu.Unlock()
	}
	return tx.StmtxContext(ctx, st), nil
}

// Open connects to dsn and checks the connection.
func Open(ctx context.Context, dsn string) (*DB, error) {
	// Prepared statements (the ingest batch's) are planned for their
	// parameters on every run: a generic plan cached while a table was
	// small (a seq scan of conversations, joined by hash) would stay as
	// the table grows, and did. Planning is cheap next to what a bad plan
	// costs; one round trip instead of two is what preparing buys.
	db, err := sqlx.Open("postgres", withParam(dsn, "plan_cache_mode", "force_custom_plan"))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// Enough for the group-commit writers, the outbox worker and the web
	// handlers on a 2-core box without starving PostgreSQL.
	db.SetMaxOpenConns(40)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &DB{DB: db, DSN: dsn, Now: time.Now, stmts: stmtCache{db: db}}, nil
}

// InTx runs fn in a transaction, committing when it returns nil.
func (db *DB) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return mapError(fmt.Errorf("begin: %w", err))
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return mapError(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// mapError turns PostgreSQL errors into domain errors where one fits.
func mapError(err error) error {
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch pe.Code.Class() {
		case "23": // integrity constraint violation
			if pe.Code == "23505" {
				return &wrapped{baton.Errorf(baton.ECONFLICT, "That already exists."), err}
			}
			return &wrapped{baton.Errorf(baton.EINVALID, "Invalid data."), err}
		case "08", "57", "3D": // connection exception, operator intervention, no such database
			return &wrapped{baton.Errorf(baton.EUNAVAILABLE, "The database is unavailable."), err}
		}
	}
	return err
}

// wrapped carries a domain error for the user and the cause for the log.
type wrapped struct {
	domain *baton.Error
	cause  error
}

func (w *wrapped) Error() string { return w.cause.Error() }

func (w *wrapped) Unwrap() []error { return []error{w.domain, w.cause} }

// notFound maps sql.ErrNoRows to ENOTFOUND with msg, other errors as usual.
func notFound(err error, msg string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return &wrapped{baton.Errorf(baton.ENOTFOUND, "%s", msg), err}
	}
	return mapError(err)
}
