-- Team work in the console (issue 8): agent status and caps for
-- assignment, tags, internal notes with @mentions, and canned replies.

-- Status as the agent (or a supervisor) set it; "away after idle" is
-- computed from last_active_at when read, so no job has to flip it.
-- last_assigned_at drives round robin: the online agent under their cap
-- who was given a conversation longest ago is next.
alter table users
    add column agent_status     text not null default 'offline',
    add column agent_cap        integer,
    add column last_active_at   timestamptz,
    add column last_assigned_at timestamptz,
    add constraint users_agent_status check (agent_status in ('online', 'away', 'offline')),
    add constraint users_agent_cap check (agent_cap is null or agent_cap >= 0);

-- The auto-assigner's scan and the per-agent load count.
create index conversations_unassigned
    on conversations (opened_at, id)
    where status = 'open' and assigned_user_id is null;
create index conversations_assigned
    on conversations (assigned_user_id)
    where status = 'open';

create table tags (
    id         bigint generated always as identity primary key,
    name       text not null,
    created_at timestamptz not null default now(),
    check (name = lower(name) and name <> '')
);
create unique index tags_name on tags (name);

create table conversation_tags (
    conversation_id bigint not null references conversations (id) on delete cascade,
    tag_id          bigint not null references tags (id) on delete cascade,
    created_at      timestamptz not null default now(),
    primary key (conversation_id, tag_id)
);
create index conversation_tags_tag on conversation_tags (tag_id);

-- Internal notes: never sent to Facebook, seen only by the team.
create table notes (
    id              bigint generated always as identity primary key,
    conversation_id bigint not null references conversations (id) on delete cascade,
    author_user_id  bigint references users (id) on delete set null,
    text            text not null,
    created_at      timestamptz not null default now()
);
create index notes_conversation on notes (conversation_id, created_at);

-- An @mention stays unseen until the mentioned user opens the conversation.
create table note_mentions (
    note_id  bigint not null references notes (id) on delete cascade,
    user_id  bigint not null references users (id) on delete cascade,
    seen_at  timestamptz,
    primary key (note_id, user_id)
);
create index note_mentions_unseen on note_mentions (user_id) where seen_at is null;

create table canned_replies (
    id         bigint generated always as identity primary key,
    shortcut   text not null,
    body       text not null,
    created_by bigint references users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check (shortcut <> '' and body <> '')
);
create unique index canned_replies_shortcut on canned_replies (lower(shortcut));
