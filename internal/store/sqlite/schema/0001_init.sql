-- Instants are integer Unix microseconds; NULL means "never" (not revoked,
-- not used, not retired).

CREATE TABLE subjects (
	subject    TEXT PRIMARY KEY,
	generation INTEGER NOT NULL
);

CREATE TABLE sessions (
	id           TEXT PRIMARY KEY,
	subject      TEXT NOT NULL,
	device       TEXT NOT NULL,
	claims       TEXT,
	created_at   INTEGER NOT NULL,
	refreshed_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	revoked_at   INTEGER
);
CREATE INDEX sessions_subject ON sessions (subject);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE refresh_tokens (
	hash             BLOB PRIMARY KEY,
	session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	created_at       INTEGER NOT NULL,
	expires_at       INTEGER NOT NULL,
	used_at          INTEGER,
	successor_hash   BLOB,
	successor_sealed BLOB
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- The revocation log. seq is assigned from log_head, never by the database.
CREATE TABLE revocations (
	seq        INTEGER PRIMARY KEY,
	kind       TEXT NOT NULL,
	session_id TEXT NOT NULL,
	subject    TEXT NOT NULL,
	generation INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

-- The last seq handed out. Appenders increment it in their transaction,
-- which serializes them; pruning leaves it alone, so the head never goes back.
CREATE TABLE log_head (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
);
INSERT INTO log_head (id, seq) VALUES (1, 0);

CREATE TABLE signing_keys (
	id          TEXT PRIMARY KEY,
	algorithm   TEXT NOT NULL,
	public_key  BLOB NOT NULL,
	private_enc BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	sign_from   INTEGER NOT NULL,
	retired_at  INTEGER
);

CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	hash       BLOB NOT NULL UNIQUE,
	role       TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE audit (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	at     INTEGER NOT NULL,
	actor  TEXT NOT NULL,
	reason TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL
);
