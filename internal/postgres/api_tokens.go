package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

// apiTokenPrefix marks Baton's secrets so that secret scanners and people
// recognise a leaked one.
const apiTokenPrefix = "baton_"

type apiTokenRow struct {
	ID         int64        `db:"id"`
	UserID     int64        `db:"user_id"`
	Name       string       `db:"name"`
	CreatedAt  time.Time    `db:"created_at"`
	LastUsedAt sql.NullTime `db:"last_used_at"`
	RevokedAt  sql.NullTime `db:"revoked_at"`
}

const apiTokenColumns = `
		id,
		user_id,
		name,
		created_at,
		last_used_at,
		revoked_at`

func (r *apiTokenRow) domain() *baton.APIToken {
	t := &baton.APIToken{ID: r.ID, UserID: r.UserID, Name: r.Name, CreatedAt: r.CreatedAt}
	if r.LastUsedAt.Valid {
		t.LastUsedAt = &r.LastUsedAt.Time
	}
	if r.RevokedAt.Valid {
		t.RevokedAt = &r.RevokedAt.Time
	}
	return t
}

func hashToken(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// CreateAPIToken implements baton.APITokenService.
func (db *DB) CreateAPIToken(ctx context.Context, userID int64, name string) (*baton.APIToken, string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, "", baton.Errorf(baton.EINVALID, "Give the token a name, such as the tool that will use it.")
	}
	if len(name) > 100 {
		return nil, "", baton.Errorf(baton.EINVALID, "Token names are at most 100 characters.")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, "", fmt.Errorf("make token: %w", err)
	}
	secret := apiTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	var r apiTokenRow
	if err := db.GetContext(ctx, &r, `
		insert into api_tokens (user_id, name, token_hash, created_at)
		values ($1, $2, $3, $4)
		returning`+apiTokenColumns, userID, clean(name), hashToken(secret), db.Now()); err != nil {
		return nil, "", mapError(fmt.Errorf("create api token: %w", err))
	}
	return r.domain(), secret, nil
}

// APITokens implements baton.APITokenService.
func (db *DB) APITokens(ctx context.Context, userID int64) ([]*baton.APIToken, error) {
	var rows []apiTokenRow
	if err := db.SelectContext(ctx, &rows, `select`+apiTokenColumns+`
		from api_tokens
		where $1 = 0 or user_id = $1
		order by created_at desc, id desc`, userID); err != nil {
		return nil, mapError(fmt.Errorf("list api tokens: %w", err))
	}
	out := make([]*baton.APIToken, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// RevokeAPIToken implements baton.APITokenService. Revoking twice keeps
// the first time.
func (db *DB) RevokeAPIToken(ctx context.Context, id, ownerID int64) (*baton.APIToken, error) {
	var r apiTokenRow
	if err := db.GetContext(ctx, &r, `
		update api_tokens set revoked_at = coalesce(revoked_at, $3)
		where id = $1 and ($2 = 0 or user_id = $2)
		returning`+apiTokenColumns, id, ownerID, db.Now()); err != nil {
		return nil, notFound(err, "Token not found.")
	}
	return r.domain(), nil
}

// AuthenticateAPIToken implements baton.APITokenService. A revoked token,
// a disabled user and an unknown secret all get the same answer.
func (db *DB) AuthenticateAPIToken(ctx context.Context, secret string) (*baton.User, *baton.APIToken, error) {
	refused := baton.Errorf(baton.EUNAUTHORIZED, "The API token is missing, unknown or revoked.")
	if !strings.HasPrefix(secret, apiTokenPrefix) {
		return nil, nil, refused
	}
	// One statement finds the token and stamps its use, at most once a
	// minute: authenticating is on every API request, and a write (a new
	// row version, a WAL flush) each time would cost more than the call.
	var r apiTokenRow
	err := db.GetContext(ctx, &r, `
		with t as (
			select`+apiTokenColumns+`
			from api_tokens
			where token_hash = $1 and revoked_at is null
		), stamp as (
			update api_tokens set last_used_at = $2::timestamptz
			where id = (select id from t) and (last_used_at is null or last_used_at < $2::timestamptz - interval '1 minute')
			returning id, last_used_at
		)
		select t.id, t.user_id, t.name, t.created_at, coalesce(stamp.last_used_at, t.last_used_at) as last_used_at, t.revoked_at
		from t left join stamp on stamp.id = t.id`, hashToken(secret), db.Now())
	if err == sql.ErrNoRows {
		return nil, nil, refused
	}
	if err != nil {
		return nil, nil, mapError(fmt.Errorf("authenticate api token: %w", err))
	}
	var ur userRow
	err = db.GetContext(ctx, &ur, `select`+userColumns+` from users where id = $1`, r.UserID)
	if err == sql.ErrNoRows || (err == nil && ur.user().Disabled) {
		return nil, nil, refused
	}
	if err != nil {
		return nil, nil, mapError(fmt.Errorf("authenticate api token: read user: %w", err))
	}
	return ur.user(), r.domain(), nil
}
