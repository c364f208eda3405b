package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Ingest implements baton.IngestStore: fn runs in one transaction whose
// commit is the durable acknowledgement of every delivery in it.
func (db *DB) Ingest(ctx context.Context, fn func(baton.IngestTx) error) error {
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		return fn(&ingestTx{tx: tx, stmts: &db.stmts})
	})
}

// ingestTx applies a whole batch with a constant number of statements,
// whatever its size: rows go in through arrays (unnest), which is what
// makes group commit pay off.
type ingestTx struct {
	tx    *sqlx.Tx
	stmts *stmtCache
}

// The batch's statements run prepared: lib/pq sends a query with
// parameters as parse+describe, then bind+execute (two round trips), while
// a prepared statement is one (still planned for each run's parameters:
// see Open). Every batch pays each of its statements, so this halves
// ingest's round trips.

func (t *ingestTx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := t.stmts.prepared(ctx, t.tx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (t *ingestTx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := t.stmts.prepared(ctx, t.tx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (t *ingestTx) selectx(ctx context.Context, dest any, q string, args ...any) error {
	st, err := t.stmts.prepared(ctx, t.tx, q)
	if err != nil {
		return err
	}
	return st.SelectContext(ctx, dest, args...)
}

func (t *ingestTx) InsertDeliveries(ctx context.Context, ds []*baton.RawDelivery) ([]int64, error) {
	bodies := make([][]byte, len(ds))
	shas := make([][]byte, len(ds))
	statuses := make([]string, len(ds))
	notes := make([]string, len(ds))
	for i, d := range ds {
		bodies[i], shas[i], statuses[i], notes[i] = d.Body, d.SHA256, d.Status, d.Note
	}
	// A malformed body Meta resends conflicts with its first copy; the
	// first copy's id is looked up afterwards.
	rows, err := t.query(ctx, `
		insert into deliveries (body, sha256, status, note)
		select * from unnest($1::bytea[], $2::bytea[], $3::text[], $4::text[])
		on conflict (sha256) where status = 'malformed' do nothing
		returning id, sha256, status`,
		pq.Array(bodies), pq.Array(shas), pq.Array(statuses), pq.Array(notes))
	if err != nil {
		return nil, mapError(fmt.Errorf("insert deliveries: %w", err))
	}
	defer rows.Close()
	ids := make([]int64, len(ds))
	// Rows come back in insertion order, which is the array's order; match
	// them up by position, skipping the conflicts.
	next := 0
	for rows.Next() {
		var id int64
		var sha []byte
		var status string
		if err := rows.Scan(&id, &sha, &status); err != nil {
			return nil, fmt.Errorf("scan delivery id: %w", err)
		}
		for next < len(ds) && !(string(ds[next].SHA256) == string(sha) && ds[next].Status == status) {
			next++
		}
		if next < len(ds) {
			ids[next] = id
			next++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(fmt.Errorf("insert deliveries: %w", err))
	}
	for i, d := range ds {
		if ids[i] == 0 {
			if err := t.tx.GetContext(ctx, &ids[i], `
				select id from deliveries where sha256 = $1 and status = 'malformed'`, d.SHA256); err != nil {
				return nil, mapError(fmt.Errorf("find earlier malformed copy: %w", err))
			}
		}
	}
	return ids, nil
}

func (t *ingestTx) InsertEvents(ctx context.Context, deliveryIDs []int64, evs []*baton.Event) ([]bool, error) {
	n := len(evs)
	pages, keys, kinds, channels, psids := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	entries, idxs, ts := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, e := range evs {
		pages[i], keys[i], kinds[i], channels[i], psids[i] = e.PageID, e.DedupeKey, string(e.Kind), string(e.Channel), e.PSID
		entries[i], idxs[i], ts[i] = int64(e.Entry), int64(e.Index), e.TimestampMS
	}
	rows, err := t.query(ctx, `
		insert into events (delivery_id, page_id, dedupe_key, kind, channel, entry_index, event_index, psid, timestamp_ms)
		select * from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::text[], $9::bigint[])
		on conflict (page_id, dedupe_key) do nothing
		returning page_id, dedupe_key`,
		pq.Array(deliveryIDs), pq.Array(pages), pq.Array(keys), pq.Array(kinds), pq.Array(channels),
		pq.Array(entries), pq.Array(idxs), pq.Array(psids), pq.Array(ts))
	if err != nil {
		return nil, mapError(fmt.Errorf("insert events: %w", err))
	}
	defer rows.Close()
	inserted := map[[2]string]bool{}
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		inserted[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(fmt.Errorf("insert events: %w", err))
	}
	// The same event twice in one batch is inserted once: only its first
	// occurrence is fresh.
	fresh := make([]bool, n)
	for i, e := range evs {
		k := [2]string{e.PageID, e.DedupeKey}
		if inserted[k] {
			fresh[i] = true
			delete(inserted, k)
		}
	}
	return fresh, nil
}

type pageRow struct {
	PageID        string `db:"page_id"`
	BatonAppID    string `db:"baton_app_id"`
	PrimaryAppID  string `db:"primary_app_id"`
	PrimaryPinned bool   `db:"primary_pinned"`
	BatonRole     string `db:"baton_role"`
}

func (r pageRow) domain() *baton.Page {
	return &baton.Page{PageID: r.PageID, BatonAppID: r.BatonAppID, PrimaryAppID: r.PrimaryAppID,
		PrimaryPinned: r.PrimaryPinned, BatonRole: r.BatonRole}
}

const pageColumns = `page_id, baton_app_id, primary_app_id, primary_pinned, baton_role`

func (t *ingestTx) Pages(ctx context.Context, ids []string) (map[string]*baton.Page, error) {
	var rows []pageRow
	if err := t.selectx(ctx, &rows, `
		select `+pageColumns+`
		from pages
		where page_id = any($1)`, pq.Array(ids)); err != nil {
		return nil, mapError(fmt.Errorf("read pages: %w", err))
	}
	out := make(map[string]*baton.Page, len(rows))
	for _, r := range rows {
		out[r.PageID] = r.domain()
	}
	return out, nil
}

func (t *ingestTx) SavePage(ctx context.Context, p *baton.Page) error {
	return savePage(ctx, t.tx, p)
}

func savePage(ctx context.Context, ex sqlx.ExecerContext, p *baton.Page) error {
	_, err := ex.ExecContext(ctx, `
		update pages set
			baton_app_id = $2,
			-- A configured Primary stays, even against a batch that read
			-- the Page before an admin pinned it (PROTOCOL.md §13.3).
			primary_app_id = case when primary_pinned then primary_app_id else $3 end,
			baton_role = $4,
			updated_at = now()
		where page_id = $1`, p.PageID, p.BatonAppID, p.PrimaryAppID, p.BatonRole)
	if err != nil {
		return mapError(fmt.Errorf("save page: %w", err))
	}
	return nil
}

// conversationColumns is the select list matching conversationRow.
const conversationColumns = `
	id,
	page_id,
	psid,
	owner_app_id,
	owner_unsure,
	owner_ts,
	status,
	close_reason,
	opened_at,
	closed_at,
	handover_metadata,
	last_user_event_ms,
	last_message_text,
	last_message_ms,
	unread,
	read_watermark,
	delivered_watermark,
	first_name,
	last_name,
	profile_pic,
	assigned_user_id,
	requested_at,
	request_reason,
	closing,
	done_outcome,
	profile_checked,
	seq,
	created_at,
	updated_at`

type conversationRow struct {
	ID                 int64         `db:"id"`
	PageID             string        `db:"page_id"`
	PSID               string        `db:"psid"`
	OwnerAppID         string        `db:"owner_app_id"`
	OwnerUnsure        bool          `db:"owner_unsure"`
	OwnerTS            int64         `db:"owner_ts"`
	Status             string        `db:"status"`
	CloseReason        string        `db:"close_reason"`
	OpenedAt           sql.NullTime  `db:"opened_at"`
	ClosedAt           sql.NullTime  `db:"closed_at"`
	HandoverMetadata   string        `db:"handover_metadata"`
	LastUserEventMS    int64         `db:"last_user_event_ms"`
	LastMessageText    string        `db:"last_message_text"`
	LastMessageMS      int64         `db:"last_message_ms"`
	Unread             int           `db:"unread"`
	ReadWatermark      int64         `db:"read_watermark"`
	DeliveredWatermark int64         `db:"delivered_watermark"`
	FirstName          string        `db:"first_name"`
	LastName           string        `db:"last_name"`
	ProfilePic         string        `db:"profile_pic"`
	AssignedUserID     sql.NullInt64 `db:"assigned_user_id"`
	RequestedAt        sql.NullTime  `db:"requested_at"`
	RequestReason      string        `db:"request_reason"`
	Closing            bool          `db:"closing"`
	DoneOutcome        string        `db:"done_outcome"`
	ProfileChecked     bool          `db:"profile_checked"`
	Seq                int64         `db:"seq"`
	CreatedAt          sql.NullTime  `db:"created_at"`
	UpdatedAt          sql.NullTime  `db:"updated_at"`
}

func (r *conversationRow) domain() *baton.Conversation {
	c := &baton.Conversation{
		ID: r.ID, PageID: r.PageID, PSID: r.PSID, OwnerAppID: r.OwnerAppID, OwnerUnsure: r.OwnerUnsure,
		OwnerTS: r.OwnerTS, Status: baton.Status(r.Status), CloseReason: r.CloseReason,
		HandoverMetadata: r.HandoverMetadata, LastUserEventMS: r.LastUserEventMS,
		LastMessageText: r.LastMessageText, LastMessageMS: r.LastMessageMS, Unread: r.Unread,
		ReadWatermark: r.ReadWatermark, DeliveredWatermark: r.DeliveredWatermark,
		FirstName: r.FirstName, LastName: r.LastName, ProfilePic: r.ProfilePic, Seq: r.Seq,
		RequestReason: r.RequestReason, Closing: r.Closing, DoneOutcome: r.DoneOutcome,
		ProfileChecked: r.ProfileChecked, CreatedAt: r.CreatedAt.Time, UpdatedAt: r.UpdatedAt.Time,
	}
	if r.AssignedUserID.Valid {
		c.AssignedUserID = &r.AssignedUserID.Int64
	}
	if r.RequestedAt.Valid {
		c.RequestedAt = &r.RequestedAt.Time
	}
	if r.OpenedAt.Valid {
		c.OpenedAt = &r.OpenedAt.Time
	}
	if r.ClosedAt.Valid {
		c.ClosedAt = &r.ClosedAt.Time
	}
	return c
}

func (t *ingestTx) LockConversations(ctx context.Context, keys []baton.ConversationKey) (map[baton.ConversationKey]*baton.Conversation, error) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].PageID != keys[j].PageID {
			return keys[i].PageID < keys[j].PageID
		}
		return keys[i].PSID < keys[j].PSID
	})
	pages, psids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		pages[i], psids[i] = k.PageID, k.PSID
	}
	// Create the missing ones, then lock all in key order: two writers
	// with overlapping batches then wait for each other instead of
	// deadlocking.
	if _, err := t.exec(ctx, `
		insert into conversations (page_id, psid)
		select * from unnest($1::text[], $2::text[])
		order by 1, 2
		on conflict (page_id, psid) do nothing`, pq.Array(pages), pq.Array(psids)); err != nil {
		return nil, mapError(fmt.Errorf("create conversations: %w", err))
	}
	var rows []conversationRow
	if err := t.selectx(ctx, &rows, `
		select `+conversationColumns+`
		from conversations
		where (page_id, psid) in (select * from unnest($1::text[], $2::text[]))
		order by page_id, psid
		for update`, pq.Array(pages), pq.Array(psids)); err != nil {
		return nil, mapError(fmt.Errorf("lock conversations: %w", err))
	}
	out := make(map[baton.ConversationKey]*baton.Conversation, len(rows))
	for i := range rows {
		c := rows[i].domain()
		out[baton.ConversationKey{PageID: c.PageID, PSID: c.PSID}] = c
	}
	return out, nil
}

func (t *ingestTx) SaveConversations(ctx context.Context, cs []*baton.Conversation) error {
	if len(cs) == 0 {
		return nil
	}
	n := len(cs)
	ids, ownerTS, lastUser, lastMsg, readWM, delWM := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	owners, statuses, reasons, meta, lastText := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	unsure := make([]bool, n)
	unread := make([]int64, n)
	opened, closed, requested := make([]sql.NullTime, n), make([]sql.NullTime, n), make([]sql.NullTime, n)
	closing := make([]bool, n)
	for i, c := range cs {
		ids[i], ownerTS[i], lastUser[i], lastMsg[i], readWM[i], delWM[i] = c.ID, c.OwnerTS, c.LastUserEventMS, c.LastMessageMS, c.ReadWatermark, c.DeliveredWatermark
		owners[i], statuses[i], reasons[i], meta[i], lastText[i] = c.OwnerAppID, string(c.Status), c.CloseReason, clean(c.HandoverMetadata), clean(c.LastMessageText)
		unsure[i], unread[i] = c.OwnerUnsure, int64(c.Unread)
		if c.OpenedAt != nil {
			opened[i] = sql.NullTime{Time: *c.OpenedAt, Valid: true}
		}
		if c.ClosedAt != nil {
			closed[i] = sql.NullTime{Time: *c.ClosedAt, Valid: true}
		}
		if c.RequestedAt != nil {
			requested[i] = sql.NullTime{Time: *c.RequestedAt, Valid: true}
		}
		closing[i] = c.Closing
	}
	openedArr, closedArr := nullTimes(opened), nullTimes(closed)
	rows, err := t.query(ctx, `
		update conversations c set
			owner_app_id = u.owner,
			owner_unsure = u.unsure,
			owner_ts = u.owner_ts,
			status = u.status,
			close_reason = u.reason,
			opened_at = u.opened,
			closed_at = u.closed,
			handover_metadata = u.meta,
			last_user_event_ms = u.last_user,
			last_message_text = u.last_text,
			last_message_ms = u.last_msg,
			unread = u.unread,
			read_watermark = u.read_wm,
			delivered_watermark = u.del_wm,
			requested_at = u.requested,
			closing = u.closing,
			seq = c.seq + 1,
			updated_at = now()
		from unnest($1::bigint[], $2::text[], $3::bool[], $4::bigint[], $5::text[], $6::text[],
			$7::timestamptz[], $8::timestamptz[], $9::text[], $10::bigint[], $11::text[], $12::bigint[],
			$13::int[], $14::bigint[], $15::bigint[], $16::timestamptz[], $17::bool[])
			as u(id, owner, unsure, owner_ts, status, reason, opened, closed, meta, last_user, last_text, last_msg, unread, read_wm, del_wm, requested, closing)
		where c.id = u.id
		returning c.id, c.seq`,
		pq.Array(ids), pq.Array(owners), pq.Array(unsure), pq.Array(ownerTS), pq.Array(statuses), pq.Array(reasons),
		openedArr, closedArr, pq.Array(meta), pq.Array(lastUser), pq.Array(lastText), pq.Array(lastMsg),
		pq.Array(unread), pq.Array(readWM), pq.Array(delWM), nullTimes(requested), pq.Array(closing))
	if err != nil {
		return mapError(fmt.Errorf("save conversations: %w", err))
	}
	defer rows.Close()
	seqs := map[int64]int64{}
	for rows.Next() {
		var id, seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return fmt.Errorf("scan seq: %w", err)
		}
		seqs[id] = seq
	}
	for _, c := range cs {
		c.Seq = seqs[c.ID]
	}
	return mapError(rows.Err())
}

// nullTimes encodes nullable timestamps as a PostgreSQL array literal
// (pq.Array has no nullable time element).
func nullTimes(ts []sql.NullTime) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(',')
		}
		if !t.Valid {
			b.WriteString("NULL")
		} else {
			b.WriteString(`"` + t.Time.UTC().Format("2006-01-02 15:04:05.999999Z07:00") + `"`)
		}
	}
	b.WriteByte('}')
	return b.String()
}

func (t *ingestTx) InsertMessages(ctx context.Context, ms []*baton.Message) error {
	ms = uniqueMessages(ms)
	if len(ms) == 0 {
		return nil
	}
	n := len(ms)
	convs, ts := make([]int64, n), make([]int64, n)
	outbox := make([]sql.NullInt64, n)
	mids, authors, apps, kinds, texts, qrs, parts := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	atts := make([]sql.NullString, n)
	for i, m := range ms {
		convs[i], ts[i] = m.ConversationID, m.TimestampMS
		mids[i], authors[i], apps[i], kinds[i], texts[i], qrs[i], parts[i] = clean(m.MID), string(m.Author), m.AppID, m.Kind, clean(m.Text), clean(m.QuickReply), string(m.Part)
		if len(m.Attachments) > 0 {
			atts[i] = sql.NullString{String: string(m.Attachments), Valid: true}
		}
		if m.OutboxID != nil {
			outbox[i] = sql.NullInt64{Int64: *m.OutboxID, Valid: true}
		}
	}
	// An echo of a send Baton already recorded (same mid) only links the
	// outbox entry; it adds no second message.
	if _, err := t.exec(ctx, `
		insert into messages (conversation_id, mid, author, app_id, kind, text, attachments, quick_reply, part, timestamp_ms, outbox_id)
		select * from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::text[], $9::text[], $10::bigint[], $11::bigint[])
		on conflict (conversation_id, mid) do update
			set outbox_id = coalesce(messages.outbox_id, excluded.outbox_id)`,
		pq.Array(convs), pq.Array(mids), pq.Array(authors), pq.Array(apps), pq.Array(kinds), pq.Array(texts),
		pq.Array(atts), pq.Array(qrs), pq.Array(parts), pq.Array(ts), pq.Array(outbox)); err != nil {
		return mapError(fmt.Errorf("insert messages: %w", err))
	}
	return nil
}

// uniqueMessages keeps the first message per (conversation, mid): one
// statement may not touch a row twice.
func uniqueMessages(ms []*baton.Message) []*baton.Message {
	type key struct {
		c   int64
		mid string
	}
	seen := make(map[key]bool, len(ms))
	out := ms[:0:0]
	for _, m := range ms {
		k := key{m.ConversationID, m.MID}
		if !seen[k] {
			seen[k] = true
			out = append(out, m)
		}
	}
	return out
}

func (t *ingestTx) InsertHandovers(ctx context.Context, hs []*baton.Handover) error {
	if len(hs) == 0 {
		return nil
	}
	n := len(hs)
	convs, ts := make([]int64, n), make([]int64, n)
	kinds, froms, tos, metas := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, h := range hs {
		convs[i], ts[i], kinds[i], froms[i], tos[i], metas[i] = h.ConversationID, h.TimestampMS, h.Kind, h.FromAppID, h.ToAppID, clean(h.Metadata)
	}
	if _, err := t.exec(ctx, `
		insert into handovers (conversation_id, kind, from_app_id, to_app_id, metadata, timestamp_ms)
		select * from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])`,
		pq.Array(convs), pq.Array(kinds), pq.Array(froms), pq.Array(tos), pq.Array(metas), pq.Array(ts)); err != nil {
		return mapError(fmt.Errorf("insert handovers: %w", err))
	}
	// Every handover that arrived by webhook is in the audit log too, in
	// the same transaction: the supervisors' page shows the whole trail.
	if _, err := t.exec(ctx, `
		insert into audit_log (action, subject, detail)
		select 'handover.' || x.kind, 'conversation:' || x.conversation_id,
			jsonb_build_object('from_app_id', x.from_app_id, 'to_app_id', x.to_app_id, 'metadata', x.metadata, 'timestamp_ms', x.timestamp_ms)
		from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
			as x (conversation_id, kind, from_app_id, to_app_id, metadata, timestamp_ms)`,
		pq.Array(convs), pq.Array(kinds), pq.Array(froms), pq.Array(tos), pq.Array(metas), pq.Array(ts)); err != nil {
		return mapError(fmt.Errorf("audit handovers: %w", err))
	}
	return nil
}

func (t *ingestTx) SetReaction(ctx context.Context, conversationID int64, mid, reaction string) error {
	if _, err := t.exec(ctx, `
		update messages set reaction = $3
		where conversation_id = $1 and mid = $2`, conversationID, mid, clean(reaction)); err != nil {
		return mapError(fmt.Errorf("set reaction: %w", err))
	}
	return nil
}

// clean removes NUL characters, which PostgreSQL text cannot hold. The
// ingest path already refuses bodies with \u0000; this guards the rest.
func clean(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
