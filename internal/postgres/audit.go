package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

// AuditEntries implements baton.AuditReader.
func (db *DB) AuditEntries(ctx context.Context, q baton.AuditQuery) ([]*baton.AuditRecord, int, error) {
	where := []string{"true"}
	args := []any{}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if a := strings.TrimSpace(q.Action); a != "" {
		if strings.HasSuffix(a, ".") {
			where = append(where, "starts_with(a.action, "+arg(a)+")")
		} else {
			where = append(where, "a.action = "+arg(a))
		}
	}
	if q.ActorID != 0 {
		where = append(where, "a.actor_user_id = "+arg(q.ActorID))
	}
	if s := strings.TrimSpace(q.Subject); s != "" {
		where = append(where, "a.subject = "+arg(s))
	}
	if !q.From.IsZero() {
		where = append(where, "a.at >= "+arg(q.From))
	}
	if !q.To.IsZero() {
		where = append(where, "a.at < "+arg(q.To))
	}
	cond := strings.Join(where, " and ")
	var total int
	if err := db.GetContext(ctx, &total, `select count(*) from audit_log a where `+cond, args...); err != nil {
		return nil, 0, mapError(fmt.Errorf("count audit log: %w", err))
	}
	limit := q.Limit
	if limit <= 0 || limit > 10000 {
		limit = 100
	}
	var rows []struct {
		ID        int64          `db:"id"`
		At        time.Time      `db:"at"`
		ActorID   sql.NullInt64  `db:"actor_user_id"`
		ActorName sql.NullString `db:"actor_name"`
		Action    string         `db:"action"`
		Subject   string         `db:"subject"`
		Detail    string         `db:"detail"`
	}
	err := db.SelectContext(ctx, &rows, `
		select
			a.id,
			a.at,
			a.actor_user_id,
			coalesce(nullif(u.name, ''), u.email) as actor_name,
			a.action,
			a.subject,
			a.detail::text as detail
		from audit_log a
		left join users u on u.id = a.actor_user_id
		where `+cond+`
		order by a.at desc, a.id desc
		limit `+arg(limit)+` offset `+arg(max(q.Offset, 0)), args...)
	if err != nil {
		return nil, 0, mapError(fmt.Errorf("list audit log: %w", err))
	}
	out := make([]*baton.AuditRecord, len(rows))
	for i, r := range rows {
		rec := &baton.AuditRecord{ID: r.ID, At: r.At, ActorName: r.ActorName.String, Action: r.Action, Subject: r.Subject, Detail: r.Detail}
		if r.ActorID.Valid {
			rec.ActorID = &r.ActorID.Int64
		}
		out[i] = rec
	}
	return out, total, nil
}
