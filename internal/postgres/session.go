package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SessionStore is an scs session store (scs.Store and scs.CtxStore) on
// Baton's own pool, with the same table shape as scs's postgresstore plus
// the owning user id, so that every session of a user can be ended in one
// statement ("sign out everywhere", disabling a user).
type SessionStore struct {
	db *DB
	// ownerOf reads who signed the session in, and when, out of encoded
	// session data; ok is false for a signed-out session. The web layer
	// owns the encoding.
	ownerOf func(data []byte) (userID int64, signedInAt time.Time, ok bool)
}

// SessionStore returns the session store; ownerOf reads the owner out of
// the data scs commits.
func (db *DB) SessionStore(ownerOf func(data []byte) (userID int64, signedInAt time.Time, ok bool)) *SessionStore {
	return &SessionStore{db: db, ownerOf: ownerOf}
}

// FindCtx returns the data of an unexpired session.
func (s *SessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `
		select data from sessions where token = $1 and expiry > $2`, token, s.db.Now()).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, mapError(fmt.Errorf("find session: %w", err))
	}
	return b, true, nil
}

// CommitCtx writes a session and its owner. A signed-in session is
// written only while its owner is enabled and has not ended their sessions
// since it signed in: a request that loaded the session before "sign out
// everywhere" cannot write it back afterwards.
func (s *SessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	var uid *int64
	var at time.Time
	if s.ownerOf != nil {
		if id, t, ok := s.ownerOf(b); ok {
			uid, at = &id, t
		}
	}
	_, err := s.db.ExecContext(ctx, `
		insert into sessions (token, data, expiry, user_id)
		select $1, $2, $3, $4
		where $4::bigint is null or exists (
			select 1 from users
			where id = $4
				and not disabled
				and coalesce(sessions_ended_at, '-infinity') < $5)
		on conflict (token) do update set
			data = excluded.data,
			expiry = excluded.expiry,
			user_id = excluded.user_id`, token, b, expiry, uid, at)
	if err != nil {
		return mapError(fmt.Errorf("commit session: %w", err))
	}
	return nil
}

// DeleteCtx ends one session.
func (s *SessionStore) DeleteCtx(ctx context.Context, token string) error {
	if _, err := s.db.ExecContext(ctx, `delete from sessions where token = $1`, token); err != nil {
		return mapError(fmt.Errorf("delete session: %w", err))
	}
	return nil
}

// Find implements scs.Store for callers without a context.
func (s *SessionStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit implements scs.Store.
func (s *SessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete implements scs.Store.
func (s *SessionStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// PruneAccounts deletes expired sessions and sign-in attempts older than
// keep: the rate limiter looks back minutes, the audit trail months.
func (db *DB) PruneAccounts(ctx context.Context, keep time.Duration) error {
	now := db.Now()
	if _, err := db.ExecContext(ctx, `delete from sessions where expiry <= $1`, now); err != nil {
		return mapError(fmt.Errorf("prune sessions: %w", err))
	}
	if _, err := db.ExecContext(ctx, `delete from login_attempts where at < $1`, now.Add(-keep)); err != nil {
		return mapError(fmt.Errorf("prune login attempts: %w", err))
	}
	return nil
}
