package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/jmoiron/sqlx"
)

// timerRow is a conversation with its timer fields (baton.TimerState).
type timerRow struct {
	conversationRow
	OwnerCheckedAt sql.NullTime  `db:"owner_checked_at"`
	ExtendedUntil  sql.NullTime  `db:"extended_until"`
	ExtendTriedAt  sql.NullTime  `db:"extend_tried_at"`
	LastAgentMS    sql.NullInt64 `db:"last_agent_ms"`
	LastQueuedAt   sql.NullTime  `db:"last_queued_at"`
}

func (r *timerRow) domain() *baton.TimerState {
	s := &baton.TimerState{Conv: r.conversationRow.domain(), OwnerCheckedAt: r.OwnerCheckedAt.Time,
		ExtendedUntil: r.ExtendedUntil.Time, ExtendTriedAt: r.ExtendTriedAt.Time}
	if r.LastAgentMS.Valid {
		s.LastAgentActivity = time.UnixMilli(r.LastAgentMS.Int64)
	}
	// A reply still in the outbox is activity too: the agent is working.
	if r.LastQueuedAt.Valid && r.LastQueuedAt.Time.After(s.LastAgentActivity) {
		s.LastAgentActivity = r.LastQueuedAt.Time
	}
	return s
}

// timerSelect reads conversations with their timer fields; the newest
// agent message and the newest agent reply queued are looked up per row.
const timerSelect = `select ` + conversationColumns + `,
		owner_checked_at,
		extended_until,
		extend_tried_at,
		(select max(m.timestamp_ms) from messages m
			where m.conversation_id = conversations.id and m.author = 'agent') as last_agent_ms,
		(select max(o.created_at) from outbox o
			where o.conversation_id = conversations.id and o.kind = 'message' and o.author_user_id is not null) as last_queued_at
	from conversations`

// OwnerUnsureConversations implements baton.TimerStore.
func (db *DB) OwnerUnsureConversations(ctx context.Context, limit int) ([]*baton.Conversation, error) {
	var rows []conversationRow
	if err := db.SelectContext(ctx, &rows, `select `+conversationColumns+` from conversations
		where owner_unsure order by id limit $1`, limit); err != nil {
		return nil, mapError(fmt.Errorf("list owner-unsure conversations: %w", err))
	}
	out := make([]*baton.Conversation, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// OpenTimerStates implements baton.TimerStore.
func (db *DB) OpenTimerStates(ctx context.Context, limit int) ([]*baton.TimerState, error) {
	var rows []timerRow
	if err := db.SelectContext(ctx, &rows, timerSelect+`
		where status = 'open' and not closing
		order by id
		limit $1`, limit); err != nil {
		return nil, mapError(fmt.Errorf("list open timers: %w", err))
	}
	out := make([]*baton.TimerState, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// TimerState implements baton.TimerStore.
func (db *DB) TimerState(ctx context.Context, id int64) (*baton.TimerState, error) {
	var r timerRow
	if err := db.GetContext(ctx, &r, timerSelect+` where id = $1`, id); err != nil {
		return nil, notFound(err, "Conversation not found.")
	}
	return r.domain(), nil
}

// ResolveOwner implements baton.TimerStore.
func (db *DB) ResolveOwner(ctx context.Context, id int64, checkedAt time.Time, fn func(c *baton.Conversation) *baton.Handover) (*baton.Conversation, error) {
	var out *baton.Conversation
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		c, err := lockConversation(ctx, tx, id)
		if err != nil {
			return err
		}
		before := *c
		h := fn(c)
		out = c
		if _, err := tx.ExecContext(ctx, `update conversations set owner_checked_at = $2 where id = $1`, id, checkedAt); err != nil {
			return mapError(fmt.Errorf("record owner check: %w", err))
		}
		if *c == before {
			return nil
		}
		if err := saveConsoleFields(ctx, tx, c); err != nil {
			return err
		}
		// saveConsoleFields leaves opened_at alone; a thread found to be
		// Baton's is opened here.
		if _, err := tx.ExecContext(ctx, `update conversations set opened_at = $2 where id = $1`, id, c.OpenedAt); err != nil {
			return mapError(fmt.Errorf("save opened time: %w", err))
		}
		if h != nil {
			return insertHandover(ctx, tx, h)
		}
		return nil
	})
	return out, err
}

// RecordExtend implements baton.TimerStore.
func (db *DB) RecordExtend(ctx context.Context, id int64, triedAt time.Time, until *time.Time) error {
	if _, err := db.ExecContext(ctx, `
		update conversations set
			extend_tried_at = $2,
			extended_until = coalesce($3, extended_until)
		where id = $1`, id, triedAt, until); err != nil {
		return mapError(fmt.Errorf("record extend: %w", err))
	}
	return nil
}
