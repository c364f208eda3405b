package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// apiWebhookSecretPrefix marks webhook signing secrets, so that a leaked
// one is recognised for what it is.
const apiWebhookSecretPrefix = "whsec_"

type apiWebhookEndpointRow struct {
	ID            int64          `db:"id"`
	URL           string         `db:"url"`
	Secret        string         `db:"secret"`
	Events        pq.StringArray `db:"events"`
	Enabled       bool           `db:"enabled"`
	CreatedBy     sql.NullInt64  `db:"created_by"`
	CreatedAt     time.Time      `db:"created_at"`
	LastStatus    int            `db:"last_status"`
	LastError     string         `db:"last_error"`
	LastAttemptAt sql.NullTime   `db:"last_attempt_at"`
	LastSuccessAt sql.NullTime   `db:"last_success_at"`
}

const apiWebhookEndpointColumns = `
		id,
		url,
		secret,
		events,
		enabled,
		created_by,
		created_at,
		last_status,
		last_error,
		last_attempt_at,
		last_success_at`

func (r *apiWebhookEndpointRow) domain() *baton.APIWebhookEndpoint {
	e := &baton.APIWebhookEndpoint{ID: r.ID, URL: r.URL, Secret: r.Secret, Events: []string(r.Events), Enabled: r.Enabled,
		CreatedAt: r.CreatedAt, LastStatus: r.LastStatus, LastError: r.LastError}
	if r.CreatedBy.Valid {
		e.CreatedBy = &r.CreatedBy.Int64
	}
	if r.LastAttemptAt.Valid {
		e.LastAttemptAt = &r.LastAttemptAt.Time
	}
	if r.LastSuccessAt.Valid {
		e.LastSuccessAt = &r.LastSuccessAt.Time
	}
	return e
}

// checkWebhookURL accepts absolute http and https URLs only: anything else
// could not be posted to, and would fail every delivery quietly.
func checkWebhookURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(raw) > 2000 {
		return "", baton.Errorf(baton.EINVALID, "Give the receiver's full URL, starting with https:// (or http:// on a private network), without a user name or password.")
	}
	return raw, nil
}

// checkEventTypes keeps known event types, in the canonical order.
func checkEventTypes(events []string) ([]string, error) {
	var out []string
	for _, t := range baton.APIEventTypes {
		if slices.Contains(events, t) {
			out = append(out, t)
		}
	}
	for _, t := range events {
		if !slices.Contains(baton.APIEventTypes, t) {
			return nil, baton.Errorf(baton.EINVALID, "Unknown event type %q.", t)
		}
	}
	if len(out) == 0 {
		return nil, baton.Errorf(baton.EINVALID, "Choose at least one event type.")
	}
	return out, nil
}

// CreateAPIWebhookEndpoint implements baton.APIWebhookStore.
func (db *DB) CreateAPIWebhookEndpoint(ctx context.Context, rawURL string, events []string, createdBy *int64) (*baton.APIWebhookEndpoint, error) {
	u, err := checkWebhookURL(rawURL)
	if err != nil {
		return nil, err
	}
	evs, err := checkEventTypes(events)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("make webhook secret: %w", err)
	}
	secret := apiWebhookSecretPrefix + base64.RawURLEncoding.EncodeToString(b)
	var r apiWebhookEndpointRow
	if err := db.GetContext(ctx, &r, `
		insert into api_webhook_endpoints (url, secret, events, created_by, created_at)
		values ($1, $2, $3, $4, $5)
		returning`+apiWebhookEndpointColumns, clean(u), secret, pq.StringArray(evs), createdBy, db.Now()); err != nil {
		return nil, mapError(fmt.Errorf("create webhook endpoint: %w", err))
	}
	return r.domain(), nil
}

// APIWebhookEndpoints implements baton.APIWebhookStore.
func (db *DB) APIWebhookEndpoints(ctx context.Context) ([]*baton.APIWebhookEndpoint, error) {
	var rows []apiWebhookEndpointRow
	if err := db.SelectContext(ctx, &rows, `select`+apiWebhookEndpointColumns+`
		from api_webhook_endpoints
		order by id`); err != nil {
		return nil, mapError(fmt.Errorf("list webhook endpoints: %w", err))
	}
	out := make([]*baton.APIWebhookEndpoint, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// SetAPIWebhookEndpointEnabled implements baton.APIWebhookStore.
func (db *DB) SetAPIWebhookEndpointEnabled(ctx context.Context, id int64, enabled bool) (*baton.APIWebhookEndpoint, error) {
	var r apiWebhookEndpointRow
	if err := db.GetContext(ctx, &r, `
		update api_webhook_endpoints set enabled = $2
		where id = $1
		returning`+apiWebhookEndpointColumns, id, enabled); err != nil {
		return nil, notFound(err, "Webhook endpoint not found.")
	}
	return r.domain(), nil
}

// DeleteAPIWebhookEndpoint implements baton.APIWebhookStore.
func (db *DB) DeleteAPIWebhookEndpoint(ctx context.Context, id int64) (*baton.APIWebhookEndpoint, error) {
	var r apiWebhookEndpointRow
	if err := db.GetContext(ctx, &r, `
		delete from api_webhook_endpoints
		where id = $1
		returning`+apiWebhookEndpointColumns, id); err != nil {
		return nil, notFound(err, "Webhook endpoint not found.")
	}
	return r.domain(), nil
}

// EnqueueAPIWebhookEvent implements baton.APIWebhookStore.
func (db *DB) EnqueueAPIWebhookEvent(ctx context.Context, endpointID int64, ev *baton.APIEvent) error {
	body, err := ev.Marshal()
	if err != nil {
		return fmt.Errorf("encode webhook event: %w", err)
	}
	res, err := db.ExecContext(ctx, `
		insert into api_webhook_deliveries (endpoint_id, event_id, event_type, body, next_attempt_at, created_at)
		select id, $2, $3, $4, $5, $5
		from api_webhook_endpoints
		where id = $1
		on conflict (endpoint_id, event_id) do nothing`, endpointID, ev.ID, ev.Type, body, db.Now())
	if err != nil {
		return mapError(fmt.Errorf("enqueue webhook event: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "Webhook endpoint not found.")
	}
	return nil
}

type apiWebhookDeliveryRow struct {
	ID            int64        `db:"id"`
	EndpointID    int64        `db:"endpoint_id"`
	EventID       string       `db:"event_id"`
	EventType     string       `db:"event_type"`
	Body          []byte       `db:"body"`
	Status        string       `db:"status"`
	Attempts      int          `db:"attempts"`
	NextAttemptAt time.Time    `db:"next_attempt_at"`
	CreatedAt     time.Time    `db:"created_at"`
	LastStatus    int          `db:"last_status"`
	LastError     string       `db:"last_error"`
	LatencyMS     int          `db:"latency_ms"`
	SentAt        sql.NullTime `db:"sent_at"`
	URL           string       `db:"url"`
	Secret        string       `db:"secret"`
}

const apiWebhookDeliveryColumns = `
		d.id,
		d.endpoint_id,
		d.event_id,
		d.event_type,
		d.body,
		d.status,
		d.attempts,
		d.next_attempt_at,
		d.created_at,
		d.last_status,
		d.last_error,
		d.latency_ms,
		d.sent_at`

func (r *apiWebhookDeliveryRow) domain() *baton.APIWebhookDelivery {
	d := &baton.APIWebhookDelivery{ID: r.ID, EndpointID: r.EndpointID, EventID: r.EventID, EventType: r.EventType, Body: r.Body,
		Status: r.Status, Attempts: r.Attempts, NextAttemptAt: r.NextAttemptAt, CreatedAt: r.CreatedAt, LastStatus: r.LastStatus,
		LastError: r.LastError, LatencyMS: r.LatencyMS, URL: r.URL, Secret: r.Secret}
	if r.SentAt.Valid {
		d.SentAt = &r.SentAt.Time
	}
	return d
}

// APIWebhookDeliveries implements baton.APIWebhookStore.
func (db *DB) APIWebhookDeliveries(ctx context.Context, endpointID int64, limit int) ([]*baton.APIWebhookDelivery, error) {
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	var rows []apiWebhookDeliveryRow
	if err := db.SelectContext(ctx, &rows, `select`+apiWebhookDeliveryColumns+`,
			e.url,
			'' as secret
		from api_webhook_deliveries d
		join api_webhook_endpoints e on e.id = d.endpoint_id
		where d.endpoint_id = $1
		order by d.id desc
		limit $2`, endpointID, limit); err != nil {
		return nil, mapError(fmt.Errorf("list webhook deliveries: %w", err))
	}
	out := make([]*baton.APIWebhookDelivery, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// ClaimAPIWebhookDeliveries implements baton.APIWebhookStore. A delivery
// being sent holds its endpoint: the next one of that endpoint waits, so a
// slow receiver occupies one sender at a time and the others keep going.
// Deliveries are otherwise independent: one waiting for its retry does
// not hold back the next (receivers order events by "at", not arrival).
// A lease that ran out
// (the instance died mid-send) makes the delivery due again.
func (db *DB) ClaimAPIWebhookDeliveries(ctx context.Context, limit int, now time.Time, lease time.Duration) ([]*baton.APIWebhookDelivery, error) {
	var rows []apiWebhookDeliveryRow
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &rows, `
			with due as (
				select d.id
				from api_webhook_deliveries d
				join api_webhook_endpoints e on e.id = d.endpoint_id and e.enabled
				where d.status in ('pending', 'sending')
					and d.next_attempt_at <= $1
					and d.id = (
						select min(x.id) from api_webhook_deliveries x
						where x.endpoint_id = d.endpoint_id
							and x.status in ('pending', 'sending')
							and x.next_attempt_at <= $1)
					and not exists (
						select 1 from api_webhook_deliveries s
						where s.endpoint_id = d.endpoint_id
							and s.status = 'sending'
							and s.next_attempt_at > $1)
				order by d.next_attempt_at, d.id
				limit $2
				for update of d skip locked
			)
			update api_webhook_deliveries d set
				status = 'sending',
				attempts = d.attempts + 1,
				next_attempt_at = $1 + $3 * interval '1 millisecond'
			from due, api_webhook_endpoints e
			where d.id = due.id and e.id = d.endpoint_id
			returning`+apiWebhookDeliveryColumns+`,
				e.url,
				e.secret`,
			now, limit, lease.Milliseconds())
	})
	if err != nil {
		return nil, mapError(fmt.Errorf("claim webhook deliveries: %w", err))
	}
	out := make([]*baton.APIWebhookDelivery, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// CompleteAPIWebhookDelivery implements baton.APIWebhookStore.
func (db *DB) CompleteAPIWebhookDelivery(ctx context.Context, d *baton.APIWebhookDelivery, r baton.APIWebhookResult, now time.Time) error {
	next := now
	if r.Status == baton.APIDeliveryPending {
		next = r.RetryAt
	}
	var sentAt *time.Time
	if r.Status == baton.APIDeliverySent {
		sentAt = &now
	}
	errText := clean(r.Error)
	if len(errText) > 500 {
		// Cut on a character boundary: half a UTF-8 sequence is text
		// PostgreSQL refuses, and the delivery could never be recorded.
		errText = strings.ToValidUTF8(errText[:500], "")
	}
	return db.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `
			update api_webhook_deliveries set
				status = $2,
				next_attempt_at = $3,
				last_status = $4,
				last_error = $5,
				latency_ms = $6,
				sent_at = $7
			where id = $1`,
			d.ID, r.Status, next, r.HTTPStatus, errText, r.Latency.Milliseconds(), sentAt); err != nil {
			return mapError(fmt.Errorf("complete webhook delivery: %w", err))
		}
		if _, err := tx.ExecContext(ctx, `
			update api_webhook_endpoints set
				last_status = $2,
				last_error = $3,
				last_attempt_at = $4,
				last_success_at = coalesce($5, last_success_at)
			where id = $1`,
			d.EndpointID, r.HTTPStatus, errText, now, sentAt); err != nil {
			return mapError(fmt.Errorf("record webhook endpoint status: %w", err))
		}
		return nil
	})
}

// apiSourceRow is one source row with its conversation and assignee, as
// the three source queries return them.
type apiSourceRow struct {
	ID   int64     `db:"id"`
	Xact string    `db:"xact"`
	At   time.Time `db:"at"`
	// handovers
	Kind        sql.NullString `db:"kind"`
	FromAppID   sql.NullString `db:"from_app_id"`
	ToAppID     sql.NullString `db:"to_app_id"`
	Metadata    sql.NullString `db:"metadata"`
	TimestampMS sql.NullInt64  `db:"timestamp_ms"`
	ActorUserID sql.NullInt64  `db:"actor_user_id"`
	// messages
	MID         sql.NullString `db:"mid"`
	Author      sql.NullString `db:"author"`
	AppID       sql.NullString `db:"app_id"`
	Text        sql.NullString `db:"text"`
	Attachments sql.NullString `db:"attachments"`
	QuickReply  sql.NullString `db:"quick_reply"`
	Part        sql.NullString `db:"part"`
	// audit_log
	Action    sql.NullString `db:"action"`
	Subject   sql.NullString `db:"subject"`
	Detail    sql.NullString `db:"detail"`
	ActorName sql.NullString `db:"actor_name"`
	// the conversation
	CID           sql.NullInt64  `db:"c_id"`
	CPageID       sql.NullString `db:"c_page_id"`
	CPSID         sql.NullString `db:"c_psid"`
	CFirstName    sql.NullString `db:"c_first_name"`
	CLastName     sql.NullString `db:"c_last_name"`
	CStatus       sql.NullString `db:"c_status"`
	CCloseReason  sql.NullString `db:"c_close_reason"`
	COwnerAppID   sql.NullString `db:"c_owner_app_id"`
	CAssignedUser sql.NullInt64  `db:"c_assigned_user_id"`
	UName         sql.NullString `db:"u_name"`
	UEmail        sql.NullString `db:"u_email"`
}

// apiSourceConversation selects the conversation c and its assignee u.
const apiSourceConversation = `
		c.id as c_id,
		c.page_id as c_page_id,
		c.psid as c_psid,
		c.first_name as c_first_name,
		c.last_name as c_last_name,
		c.status as c_status,
		c.close_reason as c_close_reason,
		c.owner_app_id as c_owner_app_id,
		c.assigned_user_id as c_assigned_user_id,
		u.name as u_name,
		u.email as u_email`

// apiSourceQueries read a source after the cursor ($1 xact, $2 id), at
// most $3 rows, and only rows whose transaction is older than every
// transaction running at the statement's snapshot: all of those have
// finished, so nothing ordered before the last row read can commit later.
var apiSourceQueries = map[string]string{
	baton.APISourceHandovers: `
		select
			h.id,
			h.xact::text as xact,
			h.created_at as at,
			h.kind,
			h.from_app_id,
			h.to_app_id,
			h.metadata,
			h.timestamp_ms,
			h.actor_user_id,` + apiSourceConversation + `
		from handovers h
		join conversations c on c.id = h.conversation_id
		left join users u on u.id = c.assigned_user_id
		where h.xact is not null
			and (h.xact, h.id) > ($1::xid8, $2::bigint)
			and h.xact < pg_snapshot_xmin(pg_current_snapshot())
		order by h.xact, h.id
		limit $3`,
	baton.APISourceMessages: `
		select
			m.id,
			m.xact::text as xact,
			m.created_at as at,
			m.kind,
			m.mid,
			m.author,
			m.app_id,
			m.text,
			m.attachments::text as attachments,
			m.quick_reply,
			m.part,
			m.timestamp_ms,` + apiSourceConversation + `
		from messages m
		join conversations c on c.id = m.conversation_id
		left join users u on u.id = c.assigned_user_id
		where m.xact is not null
			and (m.xact, m.id) > ($1::xid8, $2::bigint)
			and m.xact < pg_snapshot_xmin(pg_current_snapshot())
		order by m.xact, m.id
		limit $3`,
	baton.APISourceAudit: `
		select
			a.id,
			a.xact::text as xact,
			a.at,
			a.action,
			a.subject,
			a.detail::text as detail,
			a.actor_user_id,
			coalesce(nullif(au.name, ''), au.email) as actor_name,` + apiSourceConversation + `
		from audit_log a
		left join users au on au.id = a.actor_user_id
		left join conversations c on c.id = (case when a.subject ~ '^conversation:[0-9]{1,18}$' then substr(a.subject, 14)::bigint end)
		left join users u on u.id = c.assigned_user_id
		where a.xact is not null
			and (a.xact, a.id) > ($1::xid8, $2::bigint)
			and a.xact < pg_snapshot_xmin(pg_current_snapshot())
		order by a.xact, a.id
		limit $3`,
}

func (r *apiSourceRow) domain(source string) *baton.APISourceRow {
	out := &baton.APISourceRow{Source: source, At: r.At}
	if r.CID.Valid {
		c := &baton.Conversation{ID: r.CID.Int64, PageID: r.CPageID.String, PSID: r.CPSID.String, FirstName: r.CFirstName.String,
			LastName: r.CLastName.String, Status: baton.Status(r.CStatus.String), CloseReason: r.CCloseReason.String,
			OwnerAppID: r.COwnerAppID.String}
		if r.CAssignedUser.Valid {
			id := r.CAssignedUser.Int64
			c.AssignedUserID = &id
			if r.UEmail.Valid {
				out.Assignee = &baton.APIEventUser{ID: id, Name: r.UName.String, Email: r.UEmail.String}
			}
		}
		out.Conversation = c
	}
	var actor *int64
	if r.ActorUserID.Valid {
		id := r.ActorUserID.Int64
		actor = &id
	}
	switch source {
	case baton.APISourceHandovers:
		out.Handover = &baton.Handover{ID: r.ID, ConversationID: r.CID.Int64, Kind: r.Kind.String, FromAppID: r.FromAppID.String,
			ToAppID: r.ToAppID.String, Metadata: r.Metadata.String, TimestampMS: r.TimestampMS.Int64, ActorUserID: actor, CreatedAt: r.At}
	case baton.APISourceMessages:
		out.Message = &baton.Message{ID: r.ID, ConversationID: r.CID.Int64, MID: r.MID.String, Author: baton.Author(r.Author.String),
			AppID: r.AppID.String, Kind: r.Kind.String, Text: r.Text.String, QuickReply: r.QuickReply.String, Part: baton.Part(r.Part.String),
			TimestampMS: r.TimestampMS.Int64, CreatedAt: r.At}
		if r.Attachments.Valid {
			out.Message.Attachments = json.RawMessage(r.Attachments.String)
		}
	case baton.APISourceAudit:
		out.Audit = &baton.AuditRecord{ID: r.ID, At: r.At, ActorID: actor, ActorName: r.ActorName.String, Action: r.Action.String,
			Subject: r.Subject.String, Detail: r.Detail.String}
	}
	return out
}

// DispatchAPIEvents implements baton.APIWebhookStore.
func (db *DB) DispatchAPIEvents(ctx context.Context, source string, limit int, derive func(rows []*baton.APISourceRow) []*baton.APIEvent) (int, error) {
	query, ok := apiSourceQueries[source]
	if !ok {
		return 0, fmt.Errorf("dispatch webhook events: unknown source %q", source)
	}
	var n int
	err := db.InTx(ctx, func(tx *sqlx.Tx) error {
		// The cursor row's lock makes this instance the only one
		// advancing the source until commit; the others skip it.
		var cur struct {
			Xact   string `db:"xact"`
			LastID int64  `db:"last_id"`
		}
		err := tx.GetContext(ctx, &cur, `
			select xact::text as xact, last_id
			from api_webhook_cursors
			where source = $1
			for update skip locked`, source)
		if err == sql.ErrNoRows {
			return nil
		}
		if err != nil {
			return mapError(fmt.Errorf("lock webhook cursor: %w", err))
		}
		var endpoints []apiWebhookEndpointRow
		if err := tx.SelectContext(ctx, &endpoints, `select`+apiWebhookEndpointColumns+`
			from api_webhook_endpoints
			where enabled
			order by id`); err != nil {
			return mapError(fmt.Errorf("list webhook endpoints: %w", err))
		}
		if len(endpoints) == 0 {
			// Nobody listens: jump past every finished row at once
			// rather than reading them (events are not kept for
			// endpoints that do not exist yet).
			if _, err := tx.ExecContext(ctx, `
				update api_webhook_cursors set
					xact = s.x,
					last_id = 0,
					updated_at = now()
				from (select pg_snapshot_xmin(pg_current_snapshot()) as x) s
				where source = $1 and s.x > api_webhook_cursors.xact`, source); err != nil {
				return mapError(fmt.Errorf("skip webhook cursor: %w", err))
			}
			return nil
		}
		var rows []apiSourceRow
		if err := tx.SelectContext(ctx, &rows, query, cur.Xact, cur.LastID, limit); err != nil {
			return mapError(fmt.Errorf("read %s for webhooks: %w", source, err))
		}
		n = len(rows)
		if n == 0 {
			return nil
		}
		src := make([]*baton.APISourceRow, n)
		for i := range rows {
			src[i] = rows[i].domain(source)
		}
		var evIDs, evTypes []string
		var epIDs []int64
		var bodies [][]byte
		for _, ev := range derive(src) {
			body, err := ev.Marshal()
			if err != nil {
				return fmt.Errorf("encode webhook event %s: %w", ev.ID, err)
			}
			for i := range endpoints {
				e := endpoints[i].domain()
				if !e.Wants(ev.Type) {
					continue
				}
				epIDs, evIDs, evTypes, bodies = append(epIDs, e.ID), append(evIDs, ev.ID), append(evTypes, ev.Type), append(bodies, body)
			}
		}
		if len(epIDs) > 0 {
			if _, err := tx.ExecContext(ctx, `
				insert into api_webhook_deliveries (endpoint_id, event_id, event_type, body, next_attempt_at, created_at)
				select x.endpoint_id, x.event_id, x.event_type, x.body, $5, $5
				from unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[]) as x (endpoint_id, event_id, event_type, body)
				on conflict (endpoint_id, event_id) do nothing`,
				pq.Array(epIDs), pq.Array(evIDs), pq.Array(evTypes), pq.Array(bodies), db.Now()); err != nil {
				return mapError(fmt.Errorf("queue webhook deliveries: %w", err))
			}
		}
		last := rows[n-1]
		if _, err := tx.ExecContext(ctx, `
			update api_webhook_cursors set
				xact = $2::xid8,
				last_id = $3,
				updated_at = now()
			where source = $1`, source, last.Xact, last.ID); err != nil {
			return mapError(fmt.Errorf("advance webhook cursor: %w", err))
		}
		return nil
	})
	return n, err
}
