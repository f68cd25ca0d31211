-- API keys installed at start from a setting (TEGATA_API_KEY or the
-- api-key file: "bootstrap"; TEGATA_FEED_KEY: "feed") say so, so that a
-- start with a new secret in that setting retires the key it replaces.
-- Keys installed before are found by the audit record of their creation.

ALTER TABLE api_keys ADD COLUMN installed_as TEXT NOT NULL DEFAULT '';
UPDATE api_keys SET installed_as = 'bootstrap' WHERE EXISTS (SELECT 1 FROM audit
	WHERE audit.action = 'apikey.create' AND audit.actor = 'system'
	AND audit.reason = 'installed at start (bootstrap key)'
	AND audit.target = api_keys.name || ' (' || api_keys.id || ')');
UPDATE api_keys SET installed_as = 'feed' WHERE EXISTS (SELECT 1 FROM audit
	WHERE audit.action = 'apikey.create' AND audit.actor = 'system'
	AND audit.reason = 'installed at start (feed key)'
	AND audit.target = api_keys.name || ' (' || api_keys.id || ')');
