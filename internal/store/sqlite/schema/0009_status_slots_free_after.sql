-- free_after, which every revocation raises, is no longer indexed: only the
-- sweeper's DELETE reads by it, about once a minute, and may scan the
-- table, while the index cost an index write per slot a revocation covers.
DROP INDEX status_slots_free_after;
