-- Webhook ingest: raw deliveries, the per-Page event log used for
-- deduplication, conversations, their messages and ownership timeline.

create table pages (
    page_id        text primary key,
    baton_app_id   text not null default '',
    primary_app_id text not null default '',
    baton_role     text not null default '',
    updated_at     timestamptz not null default now()
);

-- Every POST that passed the signature check, byte for byte.
create table deliveries (
    id          bigint generated always as identity primary key,
    received_at timestamptz not null default now(),
    body        bytea not null,
    sha256      bytea not null,
    -- ok: parsed and applied; malformed: not JSON (kept for inspection);
    -- ignored: another object or an unknown Page (stored, flagged).
    status      text not null,
    note        text not null default ''
);

-- Meta resends a malformed body too: keep one copy.
create unique index deliveries_malformed_sha256
    on deliveries (sha256)
    where status = 'malformed';

create table conversations (
    id                  bigint generated always as identity primary key,
    page_id             text not null,
    psid                text not null,
    owner_app_id        text not null default '',
    owner_unsure        boolean not null default false,
    owner_ts            bigint not null default 0,
    status              text not null default 'bot',
    close_reason        text not null default '',
    opened_at           timestamptz,
    closed_at           timestamptz,
    handover_metadata   text not null default '',
    last_user_event_ms  bigint not null default 0,
    last_message_text   text not null default '',
    last_message_ms     bigint not null default 0,
    unread              integer not null default 0,
    read_watermark      bigint not null default 0,
    delivered_watermark bigint not null default 0,
    first_name          text not null default '',
    last_name           text not null default '',
    profile_pic         text not null default '',
    seq                 bigint not null default 0,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    unique (page_id, psid),
    check (status in ('bot', 'open', 'closed'))
);

create index conversations_status_last
    on conversations (status, last_message_ms desc);

-- One row per distinct event per Page: the unique key is the
-- deduplication of PROTOCOL.md §4.5. The payload stays in the delivery
-- (entry_index, channel, event_index locate it), so it is written once.
create table events (
    id              bigint generated always as identity primary key,
    delivery_id     bigint not null references deliveries (id),
    page_id         text not null,
    dedupe_key      text not null,
    kind            text not null,
    channel         text not null,
    entry_index     integer not null,
    event_index     integer not null,
    psid            text not null default '',
    timestamp_ms    bigint not null default 0,
    unique (page_id, dedupe_key)
);

create table messages (
    id              bigint generated always as identity primary key,
    conversation_id bigint not null references conversations (id),
    mid             text not null,
    author          text not null,
    app_id          text not null default '',
    kind            text not null default 'message',
    text            text not null default '',
    attachments     jsonb,
    quick_reply     text not null default '',
    part            text not null,
    timestamp_ms    bigint not null,
    outbox_id       bigint,
    reaction        text not null default '',
    created_at      timestamptz not null default now(),
    unique (conversation_id, mid)
);

create index messages_conversation_ts
    on messages (conversation_id, timestamp_ms, id);

-- The ownership timeline of SPEC "Beyond every peer" 1.
create table handovers (
    id              bigint generated always as identity primary key,
    conversation_id bigint not null references conversations (id),
    kind            text not null,
    from_app_id     text not null default '',
    to_app_id       text not null default '',
    metadata        text not null default '',
    timestamp_ms    bigint not null,
    actor_user_id   bigint,
    created_at      timestamptz not null default now()
);

create index handovers_conversation
    on handovers (conversation_id, timestamp_ms, id);
