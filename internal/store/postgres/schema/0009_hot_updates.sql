-- Batches update rows in place: a session's refreshed_at, revoked_at and
-- slot, a refresh token's used_at, a status list slot's hold. Room left on
-- each page (fillfactor) lets Postgres keep the new version on the same
-- page without touching any index (a HOT update) when no indexed column
-- changes; with full pages every such update wrote a new entry in each of
-- the table's indexes. free_after, which every revocation raises, is no
-- longer indexed for that reason: only the sweeper's DELETE reads by it,
-- about once a minute, and may scan the table.
ALTER TABLE sessions SET (fillfactor = 85);
ALTER TABLE refresh_tokens SET (fillfactor = 85);
ALTER TABLE status_slots SET (fillfactor = 85);
DROP INDEX status_slots_free_after;
