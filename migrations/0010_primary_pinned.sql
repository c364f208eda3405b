-- PROTOCOL.md §13.3: a configured Primary (MESSENGER_PRIMARY_APP_ID, or
-- one an admin saved) comes before one learnt from app_roles or
-- handovers. primary_pinned marks a configured value, which learning
-- then leaves alone.
alter table pages add column primary_pinned boolean not null default false;
