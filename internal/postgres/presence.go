package postgres

import (
	"context"
	"fmt"
	"time"
)

// MarkViewing records that user has the conversation open at now. It
// reports whether the user was not seen viewing it within fresh before,
// so that the other viewers are told about a new face only once.
func (db *DB) MarkViewing(ctx context.Context, conversationID, userID int64, now time.Time, fresh time.Duration) (bool, error) {
	var isNew bool
	err := db.GetContext(ctx, &isNew, `
		with prev as (
			select seen_at from viewers where conversation_id = $1 and user_id = $2
		), up as (
			insert into viewers (conversation_id, user_id, seen_at)
			values ($1, $2, $3)
			on conflict (conversation_id, user_id) do update set seen_at = excluded.seen_at
		)
		select coalesce((select seen_at < $4 from prev), true)`,
		conversationID, userID, now, now.Add(-fresh))
	if err != nil {
		return false, mapError(fmt.Errorf("mark viewing: %w", err))
	}
	return isNew, nil
}

// Viewers returns the names of the users other than userID who had the
// conversation open since the given time.
func (db *DB) Viewers(ctx context.Context, conversationID, userID int64, since time.Time) ([]string, error) {
	var names []string
	if err := db.SelectContext(ctx, &names, `
		select
			case when u.name <> '' then u.name else u.email end
		from viewers v
		join users u on u.id = v.user_id
		where v.conversation_id = $1
			and v.user_id <> $2
			and v.seen_at >= $3
			and not u.disabled
		order by v.seen_at desc`, conversationID, userID, since); err != nil {
		return nil, mapError(fmt.Errorf("list viewers: %w", err))
	}
	return names, nil
}
