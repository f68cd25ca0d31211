-- What a node checks at start beyond the cluster's identity: the database
-- the record was written in (home), the settings every node must share,
-- and when a node last found the database restored from a backup.
ALTER TABLE cluster ADD COLUMN home TEXT NOT NULL DEFAULT '';
ALTER TABLE cluster ADD COLUMN settings TEXT NOT NULL DEFAULT '';
ALTER TABLE cluster ADD COLUMN restored_at BIGINT;

-- One row whose system columns identify the database (store.ClusterRecord
-- Home): a restore from a logical dump inserts it anew, in another
-- transaction (xmin) and another table (tableoid); physical copies,
-- point-in-time recovery and pg_upgrade keep both.
CREATE TABLE cluster_home (
	id INTEGER PRIMARY KEY CHECK (id = 1)
);
INSERT INTO cluster_home (id) VALUES (1);
