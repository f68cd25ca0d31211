-- API keys can be revoked. A revoked row is kept (revoked_at set) so its
-- secret can never be installed again; its name may be reused, so names
-- are unique among live keys only.

ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_name_key;
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;
