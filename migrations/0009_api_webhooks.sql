-- Outgoing signed webhooks (issue 8, "API"): endpoints admins register,
-- one delivery row per (event, endpoint), and a cursor per source table.
--
-- Events are derived from rows that are already durable (handovers,
-- messages, audit_log). Identity ids are not commit-ordered: a row with a
-- smaller id can commit after a bigger one has been read. So each source
-- row records the id of the transaction that inserted it (xact, a 64-bit
-- xid8 that never wraps around), and the dispatcher reads only rows whose
-- transaction is older than every transaction still running
-- (xact < pg_snapshot_xmin(pg_current_snapshot())), in (xact, id) order:
-- once such a row is visible, no row ordered before it can appear later.
-- A column rather than the xmin system column: xmin changes when a row is
-- updated (a message gets its echo or a reaction), xact does not, and
-- xmin is 32-bit and wraps.
--
-- Rows written before this migration keep xact null and are never sent:
-- outgoing webhooks start with the events after it.

alter table messages add column xact xid8;
alter table messages alter column xact set default pg_current_xact_id();
create index messages_xact on messages (xact, id) where xact is not null;

alter table handovers add column xact xid8;
alter table handovers alter column xact set default pg_current_xact_id();
create index handovers_xact on handovers (xact, id) where xact is not null;

alter table audit_log add column xact xid8;
alter table audit_log alter column xact set default pg_current_xact_id();
create index audit_log_xact on audit_log (xact, id) where xact is not null;

create table api_webhook_endpoints (
    id              bigint generated always as identity primary key,
    url             text not null,
    -- The HMAC key: kept in full (the sender signs with it), shown to the
    -- admin once, at creation.
    secret          text not null,
    -- Event types this endpoint receives; the test event always goes.
    events          text[] not null default '{}',
    enabled         boolean not null default true,
    created_by      bigint references users (id) on delete set null,
    created_at      timestamptz not null default now(),
    last_status     integer not null default 0,
    last_error      text not null default '',
    last_attempt_at timestamptz,
    last_success_at timestamptz,
    check (url <> '' and secret <> '')
);

-- Where the dispatcher is in each source, (xact, id) exclusive. Every
-- instance runs the dispatcher; the row lock (FOR UPDATE SKIP LOCKED)
-- lets one advance a source at a time.
create table api_webhook_cursors (
    source  text primary key,
    xact    xid8 not null default '0',
    last_id bigint not null default 0,
    updated_at timestamptz not null default now()
);

insert into api_webhook_cursors (source) values ('handovers'), ('messages'), ('audit_log');

create table api_webhook_deliveries (
    id              bigint generated always as identity primary key,
    endpoint_id     bigint not null references api_webhook_endpoints (id) on delete cascade,
    -- The event id: the same for every endpoint and every attempt, sent as
    -- X-Baton-Delivery so that receivers deduplicate on it.
    event_id        text not null,
    event_type      text not null,
    -- The exact JSON sent, built once: every attempt sends the same bytes.
    body            bytea not null,
    -- pending | sending | sent | failed
    status          text not null default 'pending',
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    created_at      timestamptz not null default now(),
    last_status     integer not null default 0,
    last_error      text not null default '',
    latency_ms      integer not null default 0,
    sent_at         timestamptz,
    unique (endpoint_id, event_id),
    check (status in ('pending', 'sending', 'sent', 'failed'))
);

create index api_webhook_deliveries_due
    on api_webhook_deliveries (next_attempt_at, id)
    where status in ('pending', 'sending');

create index api_webhook_deliveries_endpoint
    on api_webhook_deliveries (endpoint_id, id desc);
