-- Accounts and security: console users, their sessions (scs), sign-in
-- attempts (audit and rate limiting), the Page settings admins edit, and
-- the audit log every part writes to.

create table users (
    id            bigint generated always as identity primary key,
    email         text not null,
    name          text not null default '',
    role          text not null default 'agent',
    disabled      boolean not null default false,
    password_hash text not null,
    last_login_at timestamptz,
    -- Sessions signed in before this are void ("sign out everywhere",
    -- disabling): a request already in flight cannot bring one back.
    sessions_ended_at timestamptz,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    check (role in ('agent', 'supervisor', 'admin')),
    check (email = lower(email) and email <> '')
);

create unique index users_email on users (email);

-- The table scs's postgresstore expects (token, data, expiry), plus the
-- owner so that "sign out everywhere" and disabling a user can end every
-- session of a user in one statement.
create table sessions (
    token   text primary key,
    data    bytea not null,
    expiry  timestamptz not null,
    user_id bigint references users (id) on delete cascade
);

create index sessions_expiry on sessions (expiry);
create index sessions_user on sessions (user_id) where user_id is not null;

-- Every sign-in attempt: the audit trail, and what the rate limiter counts.
create table login_attempts (
    id      bigint generated always as identity primary key,
    at      timestamptz not null default now(),
    email   text not null default '',
    ip      text not null default '',
    user_id bigint references users (id) on delete set null,
    success boolean not null,
    reason  text not null default ''
);

create index login_attempts_email_at on login_attempts (email, at) where not success;
create index login_attempts_ip_at on login_attempts (ip, at) where not success;

-- Page settings edited by admins; the environment seeds them at start.
alter table pages add column page_token   text not null default '';
alter table pages add column app_secret   text not null default '';
alter table pages add column verify_token text not null default '';
alter table pages add column human_agent  boolean not null default true;

create table audit_log (
    id       bigint generated always as identity primary key,
    at       timestamptz not null default now(),
    actor_user_id bigint references users (id) on delete set null,
    action   text not null,
    subject  text not null default '',
    detail   jsonb not null default '{}'
);

create index audit_log_at on audit_log (at desc);
