-- The agent console: the durable outbox, request-control state, Done
-- outcomes and assignment.

alter table conversations
    add column assigned_user_id  bigint,
    add column requested_at      timestamptz,
    add column requested_by      bigint,
    add column request_reason    text not null default '',
    add column request_outcome   text not null default '',
    add column closing           boolean not null default false,
    add column done_outcome      text not null default '',
    add column done_metadata     text not null default '',
    add column profile_checked   boolean not null default false,
    add column last_agent_activity_at timestamptz;

-- Everything Baton says to Facebook for an agent goes through here: the
-- row is committed before any Graph call, so nothing the agent wrote is
-- lost, and workers on any instance claim rows with FOR UPDATE SKIP LOCKED.
create table outbox (
    id              bigint generated always as identity primary key,
    conversation_id bigint not null references conversations (id),
    -- message | pass | request | typing_on | mark_seen
    kind            text not null,
    text            text not null default '',
    attachment_type text not null default '',
    attachment_url  text not null default '',
    -- pass: the Primary's id (or '' to let the platform default to it);
    -- pass and request: the metadata string sent.
    target_app_id   text not null default '',
    metadata        text not null default '',
    author_user_id  bigint,
    -- pending | sending | sent | failed | cancelled
    status          text not null default 'pending',
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    claimed_at      timestamptz,
    messaging_type  text not null default '',
    tag             text not null default '',
    mid             text not null default '',
    last_error      text not null default '',
    error_code      integer not null default 0,
    error_subcode   integer not null default 0,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    sent_at         timestamptz,
    check (status in ('pending', 'sending', 'sent', 'failed', 'cancelled'))
);

create index outbox_due
    on outbox (next_attempt_at, id)
    where status in ('pending', 'sending');

create index outbox_conversation
    on outbox (conversation_id, id);
