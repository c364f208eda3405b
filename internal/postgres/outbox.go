package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/jmoiron/sqlx"
)

// OutboxLease is how long a claimed item stays with its worker. It is
// longer than the Graph client's 30 s timeout plus the 30 s PROTOCOL.md
// §9 gives an echo to confirm a send whose answer was lost: when it runs
// out the worker died, and another may take the item over.
const OutboxLease = 90 * time.Second

// ClaimOutbox implements baton.OutboxStore.
func (db *DB) ClaimOutbox(ctx context.Context, limit int, now time.Time) ([]*baton.OutboxItem, error) {
	var rows []outboxRow
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		// Messages and passes of one conversation go out in order: an item
		// waits while an older one of its conversation is unfinished.
		return tx.SelectContext(ctx, &rows, `
			with due as (
				select o.id
				from outbox o
				where o.status in ('pending', 'sending')
					and o.next_attempt_at <= $1
					and not exists (
						select 1 from outbox p
						where p.conversation_id = o.conversation_id
							and p.id < o.id
							and p.status in ('pending', 'sending')
							and p.kind in ('message', 'pass'))
				order by o.id
				limit $2
				for update of o skip locked
			)
			update outbox o set
				status = 'sending',
				attempts = o.attempts + 1,
				claimed_at = $1,
				next_attempt_at = $1 + $3 * interval '1 second',
				updated_at = now()
			from due, conversations c
			where o.id = due.id and c.id = o.conversation_id
			returning `+outboxColumns+`,
				c.psid,
				c.last_user_event_ms,
				exists(select 1 from messages m where m.conversation_id = o.conversation_id and m.outbox_id = o.id) as echo_seen`,
			now, limit, OutboxLease.Seconds())
	})
	if err != nil {
		return nil, mapError(fmt.Errorf("claim outbox: %w", err))
	}
	out := make([]*baton.OutboxItem, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// CompleteOutbox implements baton.OutboxStore.
func (db *DB) CompleteOutbox(ctx context.Context, it *baton.OutboxItem, r baton.OutboxResult, now time.Time) error {
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		var sentAt *time.Time
		if r.Status == baton.OutboxSent {
			sentAt = &now
		}
		next := now
		if r.Status == baton.OutboxPending {
			next = r.RetryAt
		}
		if _, err := tx.ExecContext(ctx, `
			update outbox set
				status = $2,
				next_attempt_at = $3,
				mid = case when $4 <> '' then $4 else mid end,
				messaging_type = case when $5 <> '' then $5 else messaging_type end,
				tag = case when $5 <> '' then $6 else tag end,
				last_error = $7,
				error_code = $8,
				error_subcode = $9,
				sent_at = coalesce($10, sent_at),
				updated_at = now()
			where id = $1`,
			it.ID, r.Status, next, r.MID, r.MessagingType, r.Tag, clean(r.Error), r.Code, r.Subcode, sentAt); err != nil {
			return mapError(fmt.Errorf("complete outbox: %w", err))
		}
		if it.Kind != "message" && it.Kind != "pass" && it.Kind != "request" {
			return nil
		}
		c, err := lockConversation(ctx, tx, it.ConversationID)
		if err != nil {
			return err
		}
		if r.OwnerUnsure {
			c.OwnerUnsure = true
		}
		switch {
		case it.Kind == "message" && r.Status == baton.OutboxSent:
			if err := storeSentMessage(ctx, tx, c, it, r, now); err != nil {
				return err
			}
		case it.Kind == "pass" && r.Status == baton.OutboxSent:
			if err := applyDone(ctx, tx, c, it, now); err != nil {
				return err
			}
		case it.Kind == "pass" && r.Status == baton.OutboxFailed:
			c.Closing = false
		case it.Kind == "request" && r.Status == baton.OutboxSent:
			if err := insertHandover(ctx, tx, &baton.Handover{ConversationID: c.ID, Kind: "request_sent",
				FromAppID: c.OwnerAppID, Metadata: it.Metadata, TimestampMS: now.UnixMilli(), ActorUserID: it.AuthorUserID}); err != nil {
				return err
			}
		case it.Kind == "request" && r.Status == baton.OutboxFailed:
			c.RequestedAt = nil
		}
		return saveConsoleFields(ctx, tx, c)
	})
}

// storeSentMessage records an agent's sent message. If its echo arrived
// first (same mid), the echo's row just gains the outbox link.
func storeSentMessage(ctx context.Context, tx *sqlx.Tx, c *baton.Conversation, it *baton.OutboxItem, r baton.OutboxResult, now time.Time) error {
	if r.MID == "" {
		return nil // confirmed by its echo, which is already stored
	}
	var atts any
	if it.AttachmentURL != "" {
		b, _ := json.Marshal([]map[string]any{{"type": it.AttachmentType, "payload": map[string]string{"url": it.AttachmentURL}}})
		atts = string(b)
	}
	var appID string
	if err := tx.GetContext(ctx, &appID, `select baton_app_id from pages where page_id = $1`, c.PageID); err != nil {
		return mapError(fmt.Errorf("read page: %w", err))
	}
	ts := now.UnixMilli()
	if _, err := tx.ExecContext(ctx, `
		insert into messages (conversation_id, mid, author, app_id, kind, text, attachments, part, timestamp_ms, outbox_id)
		values ($1, $2, 'agent', $3, 'message', $4, $5::jsonb, 'live', $6, $7)
		on conflict (conversation_id, mid) do update set outbox_id = excluded.outbox_id`,
		c.ID, clean(r.MID), appID, clean(it.Text), atts, ts, it.ID); err != nil {
		return mapError(fmt.Errorf("store sent message: %w", err))
	}
	if ts >= c.LastMessageMS {
		c.LastMessageMS = ts
		c.LastMessageText = it.Text
		if c.LastMessageText == "" {
			c.LastMessageText = "[attachment]"
		}
	}
	return nil
}

// applyDone moves a conversation to Done once the pass succeeded.
func applyDone(ctx context.Context, tx *sqlx.Tx, c *baton.Conversation, it *baton.OutboxItem, now time.Time) error {
	target := it.TargetAppID
	if target == "" {
		if err := tx.GetContext(ctx, &target, `select primary_app_id from pages where page_id = $1`, c.PageID); err != nil {
			return mapError(fmt.Errorf("read page: %w", err))
		}
	}
	from := c.OwnerAppID
	t := now
	// The timers' idle auto-return is a Done with outcome "idle" that no
	// agent clicked: it closes as idle, and the timeline says so.
	reason, kind := baton.CloseDone, "done"
	if c.DoneOutcome == baton.CloseIdle && it.AuthorUserID == nil {
		reason, kind = baton.CloseIdle, "idle_return"
	}
	c.Status, c.CloseReason, c.ClosedAt, c.Closing = baton.StatusClosed, reason, &t, false
	c.OwnerAppID, c.OwnerTS, c.Unread = target, max(c.OwnerTS, now.UnixMilli()), 0
	return insertHandover(ctx, tx, &baton.Handover{ConversationID: c.ID, Kind: kind, FromAppID: from, ToAppID: target,
		Metadata: it.Metadata, TimestampMS: now.UnixMilli(), ActorUserID: it.AuthorUserID})
}

func insertHandover(ctx context.Context, tx *sqlx.Tx, h *baton.Handover) error {
	if _, err := tx.ExecContext(ctx, `
		insert into handovers (conversation_id, kind, from_app_id, to_app_id, metadata, timestamp_ms, actor_user_id)
		values ($1, $2, $3, $4, $5, $6, $7)`,
		h.ConversationID, h.Kind, h.FromAppID, h.ToAppID, clean(h.Metadata), h.TimestampMS, h.ActorUserID); err != nil {
		return mapError(fmt.Errorf("insert handover: %w", err))
	}
	return nil
}
