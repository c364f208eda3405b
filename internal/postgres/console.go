package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/jmoiron/sqlx"
)

// ListConversations implements baton.ConsoleStore.
func (db *DB) ListConversations(ctx context.Context, f baton.ConversationFilter) ([]*baton.Conversation, error) {
	where := []string{"true"}
	args := []any{}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	order := "last_message_ms desc, id desc"
	switch f.Folder {
	case baton.FolderInbox:
		where = append(where, "status = 'open'")
	case baton.FolderMine:
		where = append(where, "status = 'open'", "assigned_user_id = "+arg(f.UserID))
	case baton.FolderUnassigned:
		where = append(where, "status = 'open'", "assigned_user_id is null", "not closing")
	case baton.FolderMentions:
		where = append(where, "id in (select n.conversation_id from notes n join note_mentions m on m.note_id = n.id where m.user_id = "+
			arg(f.UserID)+" and m.seen_at is null)")
	case baton.FolderBot:
		where = append(where, "status <> 'open'", "requested_at is null")
	case baton.FolderRequested:
		where = append(where, "status <> 'open'", "requested_at is not null")
	case baton.FolderDone:
		where = append(where, "status = 'closed'")
		order = "closed_at desc nulls last, id desc"
	}
	if q := strings.TrimSpace(f.Search); q != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q) + "%"
		where = append(where, "(first_name || ' ' || last_name ilike "+arg(like)+" or psid = "+arg(q)+
			" or id in ("+messageMatch(arg(q))+"))")
	}
	if t := strings.ToLower(strings.TrimSpace(f.Tag)); t != "" {
		where = append(where, "id in (select ct.conversation_id from conversation_tags ct join tags t on t.id = ct.tag_id where t.name = "+arg(t)+")")
	}
	switch f.Sort {
	case baton.SortWaiting:
		// The person spoke last first, longest waiting first.
		order = "(last_user_event_ms > 0 and last_user_event_ms >= last_message_ms) desc, last_user_event_ms asc, id"
	case baton.SortWindow:
		// Windows still open first, the one closing soonest on top.
		order = "(last_user_event_ms <= " + arg(f.WindowCutoffMS) + ") asc, last_user_event_ms asc, id"
	}
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 200
	}
	var rows []conversationRow
	q := `select ` + conversationColumns + ` from conversations where ` + strings.Join(where, " and ") +
		` order by ` + order + ` limit ` + arg(limit)
	if err := db.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, mapError(fmt.Errorf("list conversations: %w", err))
	}
	out := make([]*baton.Conversation, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// Conversation implements baton.ConsoleStore.
func (db *DB) Conversation(ctx context.Context, id int64) (*baton.Conversation, error) {
	var r conversationRow
	if err := db.GetContext(ctx, &r, `select `+conversationColumns+` from conversations where id = $1`, id); err != nil {
		return nil, notFound(err, "Conversation not found.")
	}
	return r.domain(), nil
}

type messageRow struct {
	ID             int64          `db:"id"`
	ConversationID int64          `db:"conversation_id"`
	MID            string         `db:"mid"`
	Author         string         `db:"author"`
	AppID          string         `db:"app_id"`
	Kind           string         `db:"kind"`
	Text           string         `db:"text"`
	Attachments    sql.NullString `db:"attachments"`
	QuickReply     string         `db:"quick_reply"`
	Part           string         `db:"part"`
	TimestampMS    int64          `db:"timestamp_ms"`
	OutboxID       sql.NullInt64  `db:"outbox_id"`
	Reaction       string         `db:"reaction"`
	CreatedAt      time.Time      `db:"created_at"`
}

// Messages implements baton.ConsoleStore.
func (db *DB) Messages(ctx context.Context, conversationID, beforeID int64, limit int) ([]*baton.Message, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	var rows []messageRow
	// Newest page first, then reversed: pagination goes backwards in time.
	err := db.SelectContext(ctx, &rows, `
		select * from (
			select
				id,
				conversation_id,
				mid,
				author,
				app_id,
				kind,
				text,
				attachments::text as attachments,
				quick_reply,
				part,
				timestamp_ms,
				outbox_id,
				reaction,
				created_at
			from messages
			where conversation_id = $1
				and ($2 = 0 or (timestamp_ms, id) < (select timestamp_ms, id from messages where id = $2))
			order by timestamp_ms desc, id desc
			limit $3
		) page
		order by timestamp_ms, id`, conversationID, beforeID, limit)
	if err != nil {
		return nil, mapError(fmt.Errorf("list messages: %w", err))
	}
	out := make([]*baton.Message, len(rows))
	for i, r := range rows {
		m := &baton.Message{
			ID: r.ID, ConversationID: r.ConversationID, MID: r.MID, Author: baton.Author(r.Author), AppID: r.AppID,
			Kind: r.Kind, Text: r.Text, QuickReply: r.QuickReply, Part: baton.Part(r.Part), TimestampMS: r.TimestampMS,
			Reaction: r.Reaction, CreatedAt: r.CreatedAt,
		}
		if r.Attachments.Valid {
			m.Attachments = json.RawMessage(r.Attachments.String)
		}
		if r.OutboxID.Valid {
			m.OutboxID = &r.OutboxID.Int64
		}
		out[i] = m
	}
	return out, nil
}

// Handovers implements baton.ConsoleStore.
func (db *DB) Handovers(ctx context.Context, conversationID int64) ([]*baton.Handover, error) {
	var rows []struct {
		ID          int64         `db:"id"`
		Kind        string        `db:"kind"`
		FromAppID   string        `db:"from_app_id"`
		ToAppID     string        `db:"to_app_id"`
		Metadata    string        `db:"metadata"`
		TimestampMS int64         `db:"timestamp_ms"`
		ActorUserID sql.NullInt64 `db:"actor_user_id"`
		CreatedAt   time.Time     `db:"created_at"`
	}
	if err := db.SelectContext(ctx, &rows, `
		select
			id,
			kind,
			from_app_id,
			to_app_id,
			metadata,
			timestamp_ms,
			actor_user_id,
			created_at
		from handovers
		where conversation_id = $1
		order by timestamp_ms, id`, conversationID); err != nil {
		return nil, mapError(fmt.Errorf("list handovers: %w", err))
	}
	out := make([]*baton.Handover, len(rows))
	for i, r := range rows {
		h := &baton.Handover{ID: r.ID, ConversationID: conversationID, Kind: r.Kind, FromAppID: r.FromAppID,
			ToAppID: r.ToAppID, Metadata: r.Metadata, TimestampMS: r.TimestampMS, CreatedAt: r.CreatedAt}
		if r.ActorUserID.Valid {
			h.ActorUserID = &r.ActorUserID.Int64
		}
		out[i] = h
	}
	return out, nil
}

const outboxColumns = `
	o.id,
	o.conversation_id,
	o.kind,
	o.text,
	o.attachment_type,
	o.attachment_url,
	o.target_app_id,
	o.metadata,
	o.author_user_id,
	o.status,
	o.attempts,
	o.next_attempt_at,
	o.messaging_type,
	o.tag,
	o.mid,
	o.last_error,
	o.error_code,
	o.error_subcode,
	o.created_at,
	o.sent_at`

type outboxRow struct {
	ID              int64         `db:"id"`
	ConversationID  int64         `db:"conversation_id"`
	Kind            string        `db:"kind"`
	Text            string        `db:"text"`
	AttachmentType  string        `db:"attachment_type"`
	AttachmentURL   string        `db:"attachment_url"`
	TargetAppID     string        `db:"target_app_id"`
	Metadata        string        `db:"metadata"`
	AuthorUserID    sql.NullInt64 `db:"author_user_id"`
	Status          string        `db:"status"`
	Attempts        int           `db:"attempts"`
	NextAttemptAt   time.Time     `db:"next_attempt_at"`
	MessagingType   string        `db:"messaging_type"`
	Tag             string        `db:"tag"`
	MID             string        `db:"mid"`
	LastError       string        `db:"last_error"`
	ErrorCode       int           `db:"error_code"`
	ErrorSubcode    int           `db:"error_subcode"`
	CreatedAt       time.Time     `db:"created_at"`
	SentAt          sql.NullTime  `db:"sent_at"`
	PSID            string        `db:"psid"`
	LastUserEventMS int64         `db:"last_user_event_ms"`
	EchoSeen        bool          `db:"echo_seen"`
}

func (r *outboxRow) domain() *baton.OutboxItem {
	it := &baton.OutboxItem{
		ID: r.ID, ConversationID: r.ConversationID, Kind: r.Kind, Text: r.Text, AttachmentType: r.AttachmentType,
		AttachmentURL: r.AttachmentURL, TargetAppID: r.TargetAppID, Metadata: r.Metadata, Status: r.Status,
		Attempts: r.Attempts, NextAttemptAt: r.NextAttemptAt, MessagingType: r.MessagingType, Tag: r.Tag, MID: r.MID,
		LastError: r.LastError, ErrorCode: r.ErrorCode, ErrorSubcode: r.ErrorSubcode, CreatedAt: r.CreatedAt,
		PSID: r.PSID, LastUserEventMS: r.LastUserEventMS, EchoSeen: r.EchoSeen,
	}
	if r.AuthorUserID.Valid {
		it.AuthorUserID = &r.AuthorUserID.Int64
	}
	if r.SentAt.Valid {
		it.SentAt = &r.SentAt.Time
	}
	return it
}

// OutboxOf implements baton.ConsoleStore.
func (db *DB) OutboxOf(ctx context.Context, conversationID int64) ([]*baton.OutboxItem, error) {
	var rows []outboxRow
	if err := db.SelectContext(ctx, &rows, `
		select `+outboxColumns+`, '' as psid, 0::bigint as last_user_event_ms, false as echo_seen
		from outbox o
		where o.conversation_id = $1
			and o.kind in ('message', 'pass', 'request')
			and (o.status in ('pending', 'sending', 'failed') or o.kind <> 'message')
		order by o.id desc
		limit 50`, conversationID); err != nil {
		return nil, mapError(fmt.Errorf("list outbox: %w", err))
	}
	out := make([]*baton.OutboxItem, len(rows))
	for i := len(rows) - 1; i >= 0; i-- {
		out[len(rows)-1-i] = rows[i].domain()
	}
	return out, nil
}

// lockConversation reads a conversation for update inside tx.
func lockConversation(ctx context.Context, tx *sqlx.Tx, id int64) (*baton.Conversation, error) {
	var r conversationRow
	if err := tx.GetContext(ctx, &r, `select `+conversationColumns+` from conversations where id = $1 for update`, id); err != nil {
		return nil, notFound(err, "Conversation not found.")
	}
	return r.domain(), nil
}

// saveConsoleFields writes back what the console changes on a conversation.
func saveConsoleFields(ctx context.Context, tx *sqlx.Tx, c *baton.Conversation) error {
	err := tx.GetContext(ctx, &c.Seq, `
		update conversations set
			owner_app_id = $2,
			owner_unsure = $3,
			owner_ts = $4,
			status = $5,
			close_reason = $6,
			closed_at = $7,
			unread = $8,
			assigned_user_id = $9,
			requested_at = $10,
			request_reason = $11,
			closing = $12,
			done_outcome = $13,
			last_message_text = $14,
			last_message_ms = $15,
			seq = seq + 1,
			updated_at = now()
		where id = $1
		returning seq`,
		c.ID, c.OwnerAppID, c.OwnerUnsure, c.OwnerTS, string(c.Status), c.CloseReason, c.ClosedAt, c.Unread,
		c.AssignedUserID, c.RequestedAt, clean(c.RequestReason), c.Closing, c.DoneOutcome,
		clean(c.LastMessageText), c.LastMessageMS)
	if err != nil {
		return mapError(fmt.Errorf("save conversation: %w", err))
	}
	return nil
}

// Update implements baton.ConsoleStore.
func (db *DB) Update(ctx context.Context, id int64, fn func(c *baton.Conversation) error) (*baton.Conversation, error) {
	var out *baton.Conversation
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		c, err := lockConversation(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
		out = c
		return saveConsoleFields(ctx, tx, c)
	})
	return out, err
}

// Enqueue implements baton.ConsoleStore.
func (db *DB) Enqueue(ctx context.Context, id int64, it *baton.OutboxItem, check func(c *baton.Conversation) error) error {
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		c, err := lockConversation(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := check(c); err != nil {
			return err
		}
		if err := saveConsoleFields(ctx, tx, c); err != nil {
			return err
		}
		it.ConversationID = id
		err = tx.QueryRowxContext(ctx, `
			insert into outbox (conversation_id, kind, text, attachment_type, attachment_url, target_app_id, metadata, author_user_id)
			values ($1, $2, $3, $4, $5, $6, $7, $8)
			returning id, status, next_attempt_at, created_at`,
			id, it.Kind, clean(it.Text), it.AttachmentType, it.AttachmentURL, it.TargetAppID, clean(it.Metadata), it.AuthorUserID,
		).Scan(&it.ID, &it.Status, &it.NextAttemptAt, &it.CreatedAt)
		if err != nil {
			return mapError(fmt.Errorf("enqueue: %w", err))
		}
		// Wake the workers of every instance at once instead of at their
		// next poll.
		_, err = tx.ExecContext(ctx, `select pg_notify('baton_outbox', '')`)
		return mapError(err)
	})
}

// RetryOutbox implements baton.ConsoleStore.
func (db *DB) RetryOutbox(ctx context.Context, id int64, check func(kind string, c *baton.Conversation) error) (*baton.OutboxItem, error) {
	var r outboxRow
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		var kind string
		var conversationID int64
		if err := tx.QueryRowxContext(ctx, `select kind, conversation_id from outbox where id = $1`, id).Scan(&kind, &conversationID); err != nil {
			return notFound(err, "Nothing to retry: there is no such message.")
		}
		c, err := lockConversation(ctx, tx, conversationID)
		if err != nil {
			return err
		}
		if err := check(kind, c); err != nil {
			return err
		}
		err = tx.GetContext(ctx, &r, `
			update outbox o set
				status = 'pending',
				next_attempt_at = now(),
				last_error = '',
				error_code = 0,
				error_subcode = 0,
				updated_at = now()
			where id = $1 and status = 'failed'
			returning `+outboxColumns+`, '' as psid, 0::bigint as last_user_event_ms, false as echo_seen`, id)
		if err != nil {
			return notFound(err, "Nothing to retry: the message is not failed.")
		}
		if r.Kind == "pass" {
			if _, err := tx.ExecContext(ctx, `update conversations set closing = true, seq = seq + 1 where id = $1`, r.ConversationID); err != nil {
				return mapError(err)
			}
		}
		_, err = tx.ExecContext(ctx, `select pg_notify('baton_outbox', '')`)
		return mapError(err)
	})
	if err != nil {
		return nil, err
	}
	return r.domain(), nil
}

// SetProfile implements baton.ConsoleStore.
func (db *DB) SetProfile(ctx context.Context, id int64, first, last, pic string) error {
	_, err := db.ExecContext(ctx, `
		update conversations set
			first_name = $2,
			last_name = $3,
			profile_pic = $4,
			profile_checked = true,
			seq = seq + 1
		where id = $1`, id, clean(first), clean(last), clean(pic))
	return mapError(err)
}

// DeferProfile implements baton.ConsoleStore. It does not bump the seq:
// nothing a browser shows changed.
func (db *DB) DeferProfile(ctx context.Context, id int64, until time.Time) (bool, error) {
	var first bool
	err := db.GetContext(ctx, &first, `
		update conversations c set profile_retry_at = $2
		from (select id, profile_retry_at as prev from conversations where id = $1 for update) o
		where c.id = o.id
		returning o.prev is null`, id, until)
	return first, mapError(err)
}

// ConversationsNeedingProfile implements baton.ConsoleStore.
func (db *DB) ConversationsNeedingProfile(ctx context.Context, now time.Time, limit int) ([]*baton.Conversation, error) {
	var rows []conversationRow
	if err := db.SelectContext(ctx, &rows, `
		select `+conversationColumns+`
		from conversations
		where not profile_checked and (profile_retry_at is null or profile_retry_at <= $2)
		order by id
		limit $1`, limit, now); err != nil {
		return nil, mapError(fmt.Errorf("list conversations needing a profile: %w", err))
	}
	out := make([]*baton.Conversation, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}
