-- Instants are integer Unix microseconds; NULL means "never" (not revoked,
-- not used, not retired).

CREATE TABLE subjects (
	subject    TEXT PRIMARY KEY,
	generation BIGINT NOT NULL
);

CREATE TABLE sessions (
	id           TEXT PRIMARY KEY,
	subject      TEXT NOT NULL,
	device       TEXT NOT NULL,
	claims       TEXT,
	created_at   BIGINT NOT NULL,
	refreshed_at BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL,
	revoked_at   BIGINT
);
CREATE INDEX sessions_subject ON sessions (subject);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE refresh_tokens (
	hash             BYTEA PRIMARY KEY,
	session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	created_at       BIGINT NOT NULL,
	expires_at       BIGINT NOT NULL,
	used_at          BIGINT,
	successor_hash   BYTEA,
	successor_sealed BYTEA
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- The revocation log. seq is assigned from log_head, never by the database.
CREATE TABLE revocations (
	seq        BIGINT PRIMARY KEY,
	kind       TEXT NOT NULL,
	session_id TEXT NOT NULL,
	subject    TEXT NOT NULL,
	generation BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

-- The last seq handed out. Appenders increment it in their transaction,
-- which serializes them; pruning leaves it alone, so the head never goes back.
CREATE TABLE log_head (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq BIGINT NOT NULL
);
INSERT INTO log_head (id, seq) VALUES (1, 0);

CREATE TABLE signing_keys (
	id          TEXT PRIMARY KEY,
	algorithm   TEXT NOT NULL,
	public_key  BYTEA NOT NULL,
	private_enc BYTEA NOT NULL,
	created_at  BIGINT NOT NULL,
	sign_from   BIGINT NOT NULL,
	retired_at  BIGINT
);

CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	hash       BYTEA NOT NULL UNIQUE,
	role       TEXT NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE audit (
	id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at     BIGINT NOT NULL,
	actor  TEXT NOT NULL,
	reason TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL
);
