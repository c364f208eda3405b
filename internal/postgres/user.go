package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/jmoiron/sqlx"
)

// userRow is the users table as sqlx scans it.
type userRow struct {
	ID           int64      `db:"id"`
	Email        string     `db:"email"`
	Name         string     `db:"name"`
	Role         string     `db:"role"`
	Disabled     bool       `db:"disabled"`
	PasswordHash string     `db:"password_hash"`
	LastLoginAt  *time.Time `db:"last_login_at"`
	EndedAt      *time.Time `db:"sessions_ended_at"`
	CreatedAt    time.Time  `db:"created_at"`
	UpdatedAt    time.Time  `db:"updated_at"`
}

func (r *userRow) user() *baton.User {
	return &baton.User{
		ID: r.ID, Email: r.Email, Name: r.Name, Role: baton.Role(r.Role), Disabled: r.Disabled,
		PasswordHash: r.PasswordHash, LastLoginAt: r.LastLoginAt, SessionsEndedAt: r.EndedAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

const userColumns = `
		id,
		email,
		name,
		role,
		disabled,
		password_hash,
		last_login_at,
		sessions_ended_at,
		created_at,
		updated_at`

// CreateUser implements baton.UserService.
func (db *DB) CreateUser(ctx context.Context, u *baton.User) error {
	if !u.Role.Valid() {
		return baton.Errorf(baton.EINVALID, "Unknown role %q.", u.Role)
	}
	now := db.Now()
	var r userRow
	err := db.GetContext(ctx, &r, `
		insert into users (email, name, role, disabled, password_hash, created_at, updated_at)
		values ($1, $2, $3, $4, $5, $6, $6)
		returning`+userColumns,
		strings.ToLower(strings.TrimSpace(u.Email)), u.Name, string(u.Role), u.Disabled, u.PasswordHash, now)
	if err != nil {
		if baton.ErrorCode(mapError(err)) == baton.ECONFLICT {
			return &wrapped{baton.Errorf(baton.ECONFLICT, "A user with that email already exists."), err}
		}
		return mapError(fmt.Errorf("create user: %w", err))
	}
	*u = *r.user()
	return nil
}

// UserByID implements baton.UserService.
func (db *DB) UserByID(ctx context.Context, id int64) (*baton.User, error) {
	var r userRow
	if err := db.GetContext(ctx, &r, `select`+userColumns+` from users where id = $1`, id); err != nil {
		return nil, notFound(err, "User not found.")
	}
	return r.user(), nil
}

// UserByEmail implements baton.UserService.
func (db *DB) UserByEmail(ctx context.Context, email string) (*baton.User, error) {
	var r userRow
	if err := db.GetContext(ctx, &r, `select`+userColumns+` from users where email = $1`,
		strings.ToLower(strings.TrimSpace(email))); err != nil {
		return nil, notFound(err, "User not found.")
	}
	return r.user(), nil
}

// Users implements baton.UserService.
func (db *DB) Users(ctx context.Context) ([]*baton.User, error) {
	var rows []userRow
	if err := db.SelectContext(ctx, &rows, `select`+userColumns+` from users order by email`); err != nil {
		return nil, mapError(fmt.Errorf("list users: %w", err))
	}
	us := make([]*baton.User, len(rows))
	for i := range rows {
		us[i] = rows[i].user()
	}
	return us, nil
}

// UpdateUser implements baton.UserService. Disabling deletes the user's
// sessions in the same transaction, so no request can slip in between.
func (db *DB) UpdateUser(ctx context.Context, id int64, upd baton.UserUpdate) (*baton.User, error) {
	if upd.Role != nil && !upd.Role.Valid() {
		return nil, baton.Errorf(baton.EINVALID, "Unknown role %q.", *upd.Role)
	}
	var out *baton.User
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var role *string
		if upd.Role != nil {
			s := string(*upd.Role)
			role = &s
		}
		var r userRow
		err := tx.GetContext(ctx, &r, `
			update users set
				name = coalesce($2, name),
				role = coalesce($3, role),
				disabled = coalesce($4, disabled),
				password_hash = coalesce($5, password_hash),
				sessions_ended_at = case when $4 then $6 else sessions_ended_at end,
				updated_at = $6
			where id = $1
			returning`+userColumns, id, upd.Name, role, upd.Disabled, upd.PasswordHash, db.Now())
		if err != nil {
			return notFound(err, "User not found.")
		}
		if r.Disabled {
			if _, err := tx.ExecContext(ctx, `delete from sessions where user_id = $1`, id); err != nil {
				return mapError(fmt.Errorf("end sessions of disabled user: %w", err))
			}
		}
		out = r.user()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CountActiveAdmins implements baton.UserService.
func (db *DB) CountActiveAdmins(ctx context.Context) (int, error) {
	var n int
	if err := db.GetContext(ctx, &n, `select count(*) from users where role = 'admin' and not disabled`); err != nil {
		return 0, mapError(fmt.Errorf("count admins: %w", err))
	}
	return n, nil
}

// RecordLoginAttempt implements baton.UserService.
func (db *DB) RecordLoginAttempt(ctx context.Context, a baton.LoginAttempt) error {
	if a.At.IsZero() {
		a.At = db.Now()
	}
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `
			insert into login_attempts (at, email, ip, user_id, success, reason)
			values ($1, $2, $3, $4, $5, $6)`,
			a.At, strings.ToLower(strings.TrimSpace(a.Email)), a.IP, a.UserID, a.Success, a.Reason); err != nil {
			return mapError(fmt.Errorf("record login attempt: %w", err))
		}
		if a.Success && a.UserID != nil {
			if _, err := tx.ExecContext(ctx, `update users set last_login_at = $2 where id = $1`, *a.UserID, a.At); err != nil {
				return mapError(fmt.Errorf("stamp last login: %w", err))
			}
		}
		return nil
	})
}

// LoginFailures implements baton.UserService.
func (db *DB) LoginFailures(ctx context.Context, email, ip string, since time.Time) (byEmail, byIP int, err error) {
	err = db.QueryRowxContext(ctx, `
		select
			(select count(*) from login_attempts where not success and reason <> 'rate_limited' and email = $1 and at >= $3),
			(select count(*) from login_attempts where not success and reason <> 'rate_limited' and ip = $2 and at >= $3)`,
		strings.ToLower(strings.TrimSpace(email)), ip, since).Scan(&byEmail, &byIP)
	if err != nil {
		return 0, 0, mapError(fmt.Errorf("count login failures: %w", err))
	}
	return byEmail, byIP, nil
}

// DeleteUserSessions implements baton.UserService.
func (db *DB) DeleteUserSessions(ctx context.Context, userID int64) (int, error) {
	var n int64
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `update users set sessions_ended_at = $2 where id = $1`, userID, db.Now()); err != nil {
			return mapError(fmt.Errorf("void sessions: %w", err))
		}
		res, err := tx.ExecContext(ctx, `delete from sessions where user_id = $1`, userID)
		if err != nil {
			return mapError(fmt.Errorf("delete sessions: %w", err))
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}

// CountUserSessions counts a user's unexpired sessions (tests and the
// admin page's "signed in" column).
func (db *DB) CountUserSessions(ctx context.Context, userID int64) (int, error) {
	var n int
	if err := db.GetContext(ctx, &n, `select count(*) from sessions where user_id = $1 and expiry > $2`, userID, db.Now()); err != nil {
		return 0, mapError(fmt.Errorf("count sessions: %w", err))
	}
	return n, nil
}

// Audit implements baton.AuditLog.
func (db *DB) Audit(ctx context.Context, e baton.AuditEntry) error {
	if e.At.IsZero() {
		e.At = db.Now()
	}
	if _, err := db.ExecContext(ctx, `
		insert into audit_log (at, actor_user_id, action, subject, detail)
		values ($1, $2, $3, $4, $5)`, e.At, e.ActorID, e.Action, e.Subject, e.DetailJSON()); err != nil {
		return mapError(fmt.Errorf("write audit log: %w", err))
	}
	return nil
}
