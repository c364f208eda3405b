-- Thread-owner checks, extend_thread_control and idle auto-return
-- (PROTOCOL.md §13.4, §16): when Baton last asked Graph who owns a thread,
-- and how far it extended control, so the timers worker neither asks nor
-- extends twice for the same moment.

alter table conversations
    add column owner_checked_at timestamptz,
    add column extended_until   timestamptz,
    add column extend_tried_at  timestamptz;

-- The worker's two scans: threads whose owner is in doubt, and the open
-- threads whose timers it runs.
create index conversations_owner_unsure
    on conversations (id)
    where owner_unsure;

create index conversations_open
    on conversations (id)
    where status = 'open';
