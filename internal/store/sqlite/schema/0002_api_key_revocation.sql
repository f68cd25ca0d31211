-- API keys can be revoked. A revoked row is kept (revoked_at set) so its
-- secret can never be installed again; its name may be reused, so names
-- are unique among live keys only. SQLite cannot drop the inline UNIQUE of
-- the old table, hence the rebuild (no other table references api_keys).

CREATE TABLE api_keys_v2 (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	hash       BLOB NOT NULL UNIQUE,
	role       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);
INSERT INTO api_keys_v2 (id, name, hash, role, created_at)
	SELECT id, name, hash, role, created_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_v2 RENAME TO api_keys;
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;
