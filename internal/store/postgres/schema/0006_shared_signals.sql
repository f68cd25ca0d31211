-- Shared Signals (SSF 1.0) streams. Events are not stored: each stream
-- keeps a position (cursor) in the revocation log, and its events are
-- derived from the entries after it, in log order. Pruning keeps the
-- entries a stream still needs (up to the retention the authority sets).
-- Delivery state lives here, so any node may deliver a push stream; the
-- lease makes that one node at a time.

CREATE TABLE ssf_streams (
	id           TEXT PRIMARY KEY,
	aud          TEXT NOT NULL,
	method       TEXT NOT NULL,
	endpoint_url TEXT NOT NULL,
	auth_header  BYTEA,
	events       TEXT,
	description  TEXT NOT NULL,
	status       TEXT NOT NULL,
	reason       TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL,
	cursor       BIGINT NOT NULL,
	verify_seq   BIGINT NOT NULL DEFAULT 0,
	verify_state TEXT NOT NULL DEFAULT '',
	verify_sent  BIGINT NOT NULL DEFAULT 0,
	verify_at    BIGINT NOT NULL DEFAULT 0,
	lease_owner  TEXT NOT NULL DEFAULT '',
	lease_until  BIGINT NOT NULL DEFAULT 0,
	attempts     BIGINT NOT NULL DEFAULT 0,
	next_attempt BIGINT NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	delivered    BIGINT NOT NULL DEFAULT 0,
	lost         BIGINT NOT NULL DEFAULT 0
);

-- Poll streams: SETs acknowledged beyond the cursor (out of order).
CREATE TABLE ssf_acks (
	stream_id TEXT NOT NULL,
	seq       BIGINT NOT NULL,
	PRIMARY KEY (stream_id, seq)
);

-- Keys that sign Security Event Tokens (RS256) are kept apart from the
-- keys that sign access tokens: a rotation of one never retires the other.
ALTER TABLE signing_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT '';
