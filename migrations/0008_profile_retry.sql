-- The profile fetcher's work list. Without an index, "conversations whose
-- profile was never fetched" was a scan of the whole table on every ingest
-- commit (the fetcher wakes on each), which at 500 new people a second
-- cost PostgreSQL more than ingest itself. A failed look-up is retried no
-- sooner than profile_retry_at, kept here rather than in one instance's
-- memory so that every instance honours it and a restart does not hammer
-- the Graph API.
alter table conversations add column profile_retry_at timestamptz;

create index conversations_profile_pending
    on conversations (id)
    where not profile_checked;
