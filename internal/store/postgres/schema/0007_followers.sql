-- The cluster's identity, claimed by the first node that starts on the
-- database: the issuer every node signs with, and a random epoch that
-- verifiers see in heartbeats, so that one that meets another log starts
-- over instead of trusting positions in the old one.
CREATE TABLE cluster (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	issuer     TEXT NOT NULL,
	epoch      TEXT NOT NULL,
	created_at BIGINT NOT NULL
);

-- One row per authority node process: every verifier following it holds,
-- or refuses every token without, every log entry up to safe. Rewritten
-- about every second; after expires_at a node that wrote nothing more
-- vouches for nothing (the leases it granted have run out).
CREATE TABLE feed_nodes (
	id         TEXT PRIMARY KEY,
	url        TEXT NOT NULL,
	safe       BIGINT NOT NULL,
	head       BIGINT NOT NULL,
	followers  BIGINT NOT NULL,
	version    BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX feed_nodes_expires_at ON feed_nodes (expires_at);

-- One row per verifier, written by the node that last heard from it.
-- stale_after is in microseconds; ready is 1 when the verifier said its
-- state was current.
CREATE TABLE feed_verifiers (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	host        TEXT NOT NULL,
	version     TEXT NOT NULL,
	node_id     TEXT NOT NULL,
	position    BIGINT NOT NULL,
	ready       BIGINT NOT NULL,
	stale_after BIGINT NOT NULL,
	heard_at    BIGINT NOT NULL
);
CREATE INDEX feed_verifiers_heard_at ON feed_verifiers (heard_at);
