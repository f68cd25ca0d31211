-- What a node checks at start beyond the cluster's identity: the settings
-- every node must share, and when a node last found the database restored
-- from a backup. home stays empty: a SQLite restore is a file copy, which
-- keeps everything (the node's data directory notices it instead).
ALTER TABLE cluster ADD COLUMN home TEXT NOT NULL DEFAULT '';
ALTER TABLE cluster ADD COLUMN settings TEXT NOT NULL DEFAULT '';
ALTER TABLE cluster ADD COLUMN restored_at INTEGER;
