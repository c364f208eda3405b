-- Supervision and the API: audit log filters, full-text search over
-- messages and names, and personal API tokens.

-- The audit page filters by action, actor and subject, newest first.
create index audit_log_action_at on audit_log (action, at desc);
create index audit_log_actor_at on audit_log (actor_user_id, at desc);
create index audit_log_subject_at on audit_log (subject, at desc);

-- Full-text search over message text. An expression index rather than a
-- stored column: nothing to keep in step on insert, and the queries in
-- internal/postgres/search.go use exactly this expression.
create index messages_text_fts
    on messages
    using gin (to_tsvector('english', text));

-- The dashboard's per-hour and response-time figures.
create index messages_agent_ts
    on messages (timestamp_ms)
    where author = 'agent';

create index handovers_ts
    on handovers (timestamp_ms);

-- Personal API tokens: only the SHA-256 of the secret is stored; the
-- secret is shown once, at creation.
create table api_tokens (
    id           bigint generated always as identity primary key,
    user_id      bigint not null references users (id) on delete cascade,
    name         text not null default '',
    token_hash   bytea not null,
    created_at   timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

create unique index api_tokens_hash on api_tokens (token_hash);
create index api_tokens_user on api_tokens (user_id, created_at desc);
