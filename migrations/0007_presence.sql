-- Who has a conversation open right now ("Ana is viewing"): each open
-- console tab renews its row every few seconds; rows older than a minute
-- are stale and ignored.
create table viewers (
    conversation_id bigint not null references conversations (id),
    user_id         bigint not null references users (id) on delete cascade,
    seen_at         timestamptz not null,
    primary key (conversation_id, user_id)
);
