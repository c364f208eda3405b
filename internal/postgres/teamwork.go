package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

type agentRow struct {
	ID             int64         `db:"id"`
	Name           string        `db:"name"`
	Email          string        `db:"email"`
	Role           string        `db:"role"`
	Status         string        `db:"agent_status"`
	Cap            sql.NullInt64 `db:"agent_cap"`
	LastActiveAt   sql.NullTime  `db:"last_active_at"`
	LastAssignedAt sql.NullTime  `db:"last_assigned_at"`
	Open           int           `db:"open"`
}

func (r agentRow) domain() *baton.Agent {
	a := &baton.Agent{UserID: r.ID, Name: r.Name, Role: baton.Role(r.Role), Status: baton.AgentStatus(r.Status), Open: r.Open}
	if a.Name == "" {
		a.Name = r.Email
	}
	if r.Cap.Valid {
		c := int(r.Cap.Int64)
		a.Cap = &c
	}
	if r.LastActiveAt.Valid {
		a.LastActiveAt = &r.LastActiveAt.Time
	}
	if r.LastAssignedAt.Valid {
		a.LastAssignedAt = &r.LastAssignedAt.Time
	}
	return a
}

const agentsQuery = `
	select
		u.id,
		u.name,
		u.email,
		u.role,
		u.agent_status,
		u.agent_cap,
		u.last_active_at,
		u.last_assigned_at,
		(select count(*) from conversations c
			where c.status = 'open' and c.assigned_user_id = u.id and not c.closing) as open
	from users u
	where not u.disabled
	order by u.name, u.id`

// Agents implements baton.TeamStore.
func (db *DB) Agents(ctx context.Context) ([]*baton.Agent, error) {
	return agents(ctx, db.DB)
}

func agents(ctx context.Context, q sqlx.QueryerContext) ([]*baton.Agent, error) {
	var rows []agentRow
	if err := sqlx.SelectContext(ctx, q, &rows, agentsQuery); err != nil {
		return nil, mapError(fmt.Errorf("list agents: %w", err))
	}
	out := make([]*baton.Agent, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// SetAgentStatus implements baton.TeamStore.
func (db *DB) SetAgentStatus(ctx context.Context, userID int64, s baton.AgentStatus) error {
	res, err := db.ExecContext(ctx, `update users set agent_status = $2 where id = $1 and not disabled`, userID, string(s))
	if err != nil {
		return mapError(fmt.Errorf("set agent status: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "User not found.")
	}
	return nil
}

// SetAgentCap implements baton.TeamStore.
func (db *DB) SetAgentCap(ctx context.Context, userID int64, cap *int) error {
	res, err := db.ExecContext(ctx, `update users set agent_cap = $2 where id = $1`, userID, cap)
	if err != nil {
		return mapError(fmt.Errorf("set agent cap: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "User not found.")
	}
	return nil
}

// TouchAgent implements baton.TeamStore.
func (db *DB) TouchAgent(ctx context.Context, userID int64, at time.Time) error {
	_, err := db.ExecContext(ctx, `
		update users set last_active_at = $2
		where id = $1 and (last_active_at is null or last_active_at < $2::timestamptz - interval '1 minute')`, userID, at)
	return mapError(err)
}

// assignLock serialises auto-assignment across instances, so two
// instances never both give the last free slot of an agent.
const assignLock = 0x6261746f6e01 // "baton" 1

// AutoAssign implements baton.TeamStore. Each assignment is its own short
// transaction holding one conversation row, taken with SKIP LOCKED: ingest
// never waits for the assigner, and the two cannot deadlock.
func (db *DB) AutoAssign(ctx context.Context, now time.Time, pick func([]*baton.Agent) (int64, bool)) ([]*baton.Conversation, error) {
	var out []*baton.Conversation
	for len(out) < 100 {
		var got *baton.Conversation
		done := false
		err := db.InTx(ctx, func(tx *sqlx.Tx) error {
			if _, err := tx.ExecContext(ctx, `select pg_advisory_xact_lock($1)`, assignLock); err != nil {
				return mapError(fmt.Errorf("assign lock: %w", err))
			}
			var r conversationRow
			err := tx.GetContext(ctx, &r, `
				select `+conversationColumns+` from conversations
				where status = 'open' and assigned_user_id is null and not closing
				order by opened_at nulls last, id
				limit 1
				for update skip locked`)
			if errors.Is(err, sql.ErrNoRows) {
				done = true
				return nil
			}
			if err != nil {
				return mapError(fmt.Errorf("next unassigned: %w", err))
			}
			team, err := agents(ctx, tx)
			if err != nil {
				return err
			}
			uid, ok := pick(team)
			if !ok {
				done = true
				return nil
			}
			c := r.domain()
			c.AssignedUserID = &uid
			if err := saveConsoleFields(ctx, tx, c); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `update users set last_assigned_at = $2 where id = $1`, uid, now); err != nil {
				return mapError(fmt.Errorf("stamp assignment: %w", err))
			}
			got = c
			return nil
		})
		if err != nil {
			return out, err
		}
		if done {
			break
		}
		out = append(out, got)
	}
	return out, nil
}

// CountConversations implements baton.TeamStore: one pass over the
// conversations counts every folder and, in each, those with unread
// messages.
func (db *DB) CountConversations(ctx context.Context, userID int64) (total, unread baton.FolderCounts, err error) {
	type counts struct {
		Inbox      int `db:"inbox"`
		Mine       int `db:"mine"`
		Unassigned int `db:"unassigned"`
		Bot        int `db:"bot"`
		Requested  int `db:"requested"`
		Done       int `db:"done"`
		All        int `db:"all_"`
		Mentions   int `db:"mentions"`
	}
	var r struct {
		T counts `db:"t"`
		U counts `db:"u"`
	}
	err = db.GetContext(ctx, &r, `
		select
			count(*) filter (where status = 'open') as "t.inbox",
			count(*) filter (where status = 'open' and assigned_user_id = $1) as "t.mine",
			count(*) filter (where status = 'open' and assigned_user_id is null and not closing) as "t.unassigned",
			count(*) filter (where status <> 'open' and requested_at is null) as "t.bot",
			count(*) filter (where status <> 'open' and requested_at is not null) as "t.requested",
			count(*) filter (where status = 'closed') as "t.done",
			count(*) as "t.all_",
			(select count(distinct n.conversation_id) from notes n join note_mentions m on m.note_id = n.id
				where m.user_id = $1 and m.seen_at is null) as "t.mentions",
			count(*) filter (where unread > 0 and status = 'open') as "u.inbox",
			count(*) filter (where unread > 0 and status = 'open' and assigned_user_id = $1) as "u.mine",
			count(*) filter (where unread > 0 and status = 'open' and assigned_user_id is null and not closing) as "u.unassigned",
			count(*) filter (where unread > 0 and status <> 'open' and requested_at is null) as "u.bot",
			count(*) filter (where unread > 0 and status <> 'open' and requested_at is not null) as "u.requested",
			count(*) filter (where unread > 0 and status = 'closed') as "u.done",
			count(*) filter (where unread > 0) as "u.all_",
			0 as "u.mentions"
		from conversations`, userID)
	if err != nil {
		return nil, nil, mapError(fmt.Errorf("count conversations: %w", err))
	}
	folders := func(c counts) baton.FolderCounts {
		return baton.FolderCounts{
			baton.FolderInbox: c.Inbox, baton.FolderMine: c.Mine, baton.FolderUnassigned: c.Unassigned, baton.FolderBot: c.Bot,
			baton.FolderRequested: c.Requested, baton.FolderDone: c.Done, baton.FolderAll: c.All, baton.FolderMentions: c.Mentions,
		}
	}
	return folders(r.T), folders(r.U), nil
}

// Tags implements baton.TeamStore.
func (db *DB) Tags(ctx context.Context) ([]*baton.Tag, error) {
	var out []*baton.Tag
	if err := db.SelectContext(ctx, &out, `select id, name from tags order by name`); err != nil {
		return nil, mapError(fmt.Errorf("list tags: %w", err))
	}
	return out, nil
}

// TagsOf implements baton.TeamStore.
func (db *DB) TagsOf(ctx context.Context, conversationID int64) ([]*baton.Tag, error) {
	var out []*baton.Tag
	if err := db.SelectContext(ctx, &out, `
		select t.id, t.name from tags t join conversation_tags ct on ct.tag_id = t.id
		where ct.conversation_id = $1 order by t.name`, conversationID); err != nil {
		return nil, mapError(fmt.Errorf("list conversation tags: %w", err))
	}
	return out, nil
}

func bumpSeq(ctx context.Context, tx *sqlx.Tx, conversationID int64) error {
	res, err := tx.ExecContext(ctx, `update conversations set seq = seq + 1, updated_at = now() where id = $1`, conversationID)
	if err != nil {
		return mapError(fmt.Errorf("bump seq: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "Conversation not found.")
	}
	return nil
}

// AddTag implements baton.TeamStore.
func (db *DB) AddTag(ctx context.Context, conversationID int64, name string) (*baton.Tag, error) {
	t := &baton.Tag{Name: name}
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := bumpSeq(ctx, tx, conversationID); err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &t.ID, `
			insert into tags (name) values ($1)
			on conflict (name) do update set name = excluded.name
			returning id`, clean(name)); err != nil {
			return mapError(fmt.Errorf("create tag: %w", err))
		}
		_, err := tx.ExecContext(ctx, `insert into conversation_tags (conversation_id, tag_id) values ($1, $2) on conflict do nothing`,
			conversationID, t.ID)
		return mapError(err)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// RemoveTag implements baton.TeamStore.
func (db *DB) RemoveTag(ctx context.Context, conversationID int64, name string) error {
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := bumpSeq(ctx, tx, conversationID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			delete from conversation_tags
			where conversation_id = $1 and tag_id = (select id from tags where name = $2)`, conversationID, name)
		return mapError(err)
	})
}

// AddNote implements baton.TeamStore.
func (db *DB) AddNote(ctx context.Context, n *baton.Note) error {
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := bumpSeq(ctx, tx, n.ConversationID); err != nil {
			return err
		}
		if err := tx.QueryRowxContext(ctx, `
			insert into notes (conversation_id, author_user_id, text, created_at) values ($1, $2, $3, $4)
			returning id`, n.ConversationID, n.AuthorUserID, clean(n.Text), n.CreatedAt).Scan(&n.ID); err != nil {
			return mapError(fmt.Errorf("add note: %w", err))
		}
		if len(n.Mentions) > 0 {
			if _, err := tx.ExecContext(ctx, `
				insert into note_mentions (note_id, user_id)
				select $1, u from unnest($2::bigint[]) u
				on conflict do nothing`, n.ID, pq.Array(n.Mentions)); err != nil {
				return mapError(fmt.Errorf("add mentions: %w", err))
			}
		}
		return nil
	})
}

// Notes implements baton.TeamStore.
func (db *DB) Notes(ctx context.Context, conversationID int64) ([]*baton.Note, error) {
	var rows []struct {
		ID        int64          `db:"id"`
		Author    sql.NullInt64  `db:"author_user_id"`
		Name      sql.NullString `db:"author_name"`
		Text      string         `db:"text"`
		CreatedAt time.Time      `db:"created_at"`
		Mentions  pq.Int64Array  `db:"mentions"`
	}
	if err := db.SelectContext(ctx, &rows, `
		select
			n.id,
			n.author_user_id,
			coalesce(nullif(u.name, ''), u.email) as author_name,
			n.text,
			n.created_at,
			coalesce((select array_agg(m.user_id order by m.user_id) from note_mentions m where m.note_id = n.id), '{}') as mentions
		from notes n
		left join users u on u.id = n.author_user_id
		where n.conversation_id = $1
		order by n.created_at, n.id`, conversationID); err != nil {
		return nil, mapError(fmt.Errorf("list notes: %w", err))
	}
	out := make([]*baton.Note, len(rows))
	for i, r := range rows {
		n := &baton.Note{ID: r.ID, ConversationID: conversationID, AuthorName: r.Name.String, Text: r.Text,
			CreatedAt: r.CreatedAt, Mentions: []int64(r.Mentions)}
		if r.Author.Valid {
			n.AuthorUserID = &r.Author.Int64
		}
		out[i] = n
	}
	return out, nil
}

// SeeMentions implements baton.TeamStore.
func (db *DB) SeeMentions(ctx context.Context, userID, conversationID int64, at time.Time) error {
	_, err := db.ExecContext(ctx, `
		update note_mentions m set seen_at = $3
		from notes n
		where n.id = m.note_id and n.conversation_id = $2 and m.user_id = $1 and m.seen_at is null`,
		userID, conversationID, at)
	return mapError(err)
}

// CannedReplies implements baton.TeamStore.
func (db *DB) CannedReplies(ctx context.Context) ([]*baton.CannedReply, error) {
	var rows []struct {
		ID        int64         `db:"id"`
		Shortcut  string        `db:"shortcut"`
		Body      string        `db:"body"`
		CreatedBy sql.NullInt64 `db:"created_by"`
		UpdatedAt time.Time     `db:"updated_at"`
	}
	if err := db.SelectContext(ctx, &rows, `select id, shortcut, body, created_by, updated_at from canned_replies order by lower(shortcut)`); err != nil {
		return nil, mapError(fmt.Errorf("list canned replies: %w", err))
	}
	out := make([]*baton.CannedReply, len(rows))
	for i, r := range rows {
		c := &baton.CannedReply{ID: r.ID, Shortcut: r.Shortcut, Body: r.Body, UpdatedAt: r.UpdatedAt}
		if r.CreatedBy.Valid {
			c.CreatedBy = &r.CreatedBy.Int64
		}
		out[i] = c
	}
	return out, nil
}

// SaveCannedReply implements baton.TeamStore: a zero ID inserts.
func (db *DB) SaveCannedReply(ctx context.Context, r *baton.CannedReply) error {
	var err error
	if r.ID == 0 {
		err = db.QueryRowxContext(ctx, `
			insert into canned_replies (shortcut, body, created_by) values ($1, $2, $3)
			returning id, updated_at`, clean(r.Shortcut), clean(r.Body), r.CreatedBy).Scan(&r.ID, &r.UpdatedAt)
	} else {
		err = db.QueryRowxContext(ctx, `
			update canned_replies set shortcut = $2, body = $3, updated_at = now() where id = $1
			returning id, updated_at`, r.ID, clean(r.Shortcut), clean(r.Body)).Scan(&r.ID, &r.UpdatedAt)
		if err != nil {
			err = notFound(err, "Canned reply not found.")
		}
	}
	if err != nil {
		if e := mapError(err); baton.ErrorCode(e) == baton.ECONFLICT {
			return baton.Errorf(baton.ECONFLICT, "The shortcut /%s is taken.", strings.TrimPrefix(r.Shortcut, "/"))
		}
		return mapError(fmt.Errorf("save canned reply: %w", err))
	}
	return nil
}

// DeleteCannedReply implements baton.TeamStore.
func (db *DB) DeleteCannedReply(ctx context.Context, id int64) error {
	res, err := db.ExecContext(ctx, `delete from canned_replies where id = $1`, id)
	if err != nil {
		return mapError(fmt.Errorf("delete canned reply: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "Canned reply not found.")
	}
	return nil
}

var _ baton.TeamStore = (*DB)(nil)

// ListExtras implements baton.TeamStore.
func (db *DB) ListExtras(ctx context.Context, ids []int64) (map[int64]*baton.ListExtra, error) {
	out := make(map[int64]*baton.ListExtra, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		ID     int64          `db:"id"`
		Author sql.NullString `db:"author"`
		AppID  sql.NullString `db:"app_id"`
		Tags   pq.StringArray `db:"tags"`
	}
	if err := db.SelectContext(ctx, &rows, `
		select
			c.id,
			m.author,
			m.app_id,
			coalesce((select array_agg(t.name order by t.name) from conversation_tags ct join tags t on t.id = ct.tag_id
				where ct.conversation_id = c.id), '{}') as tags
		from unnest($1::bigint[]) as c(id)
		left join lateral (
			select author, app_id from messages
			where conversation_id = c.id
			order by timestamp_ms desc, id desc
			limit 1
		) m on true`, pq.Array(ids)); err != nil {
		return nil, mapError(fmt.Errorf("list extras: %w", err))
	}
	for _, r := range rows {
		out[r.ID] = &baton.ListExtra{LastAuthor: baton.Author(r.Author.String), LastAppID: r.AppID.String, Tags: []string(r.Tags)}
	}
	return out, nil
}
