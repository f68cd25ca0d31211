-- Token Status Lists (draft-ietf-oauth-status-list). Each session
-- generation holds one entry (slot) of one list; its access tokens carry
-- the list and index. A revocation lists the slots it made INVALID in its
-- log row (slots), so every node builds the lists from the log alone.
-- A slot is held until free_after (the session's end, or the expiry of the
-- revocation that covered it); the sweeper deletes rows well past that, and
-- only then can the position be allocated again.

CREATE TABLE status_lists (
	id         BIGINT PRIMARY KEY,
	size       BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE status_slots (
	list_id    BIGINT NOT NULL,
	idx        BIGINT NOT NULL,
	session_id TEXT NOT NULL,
	subject    TEXT NOT NULL,
	generation BIGINT NOT NULL,
	retired    INTEGER NOT NULL DEFAULT 0,
	free_after BIGINT NOT NULL,
	PRIMARY KEY (list_id, idx)
);
CREATE INDEX status_slots_session ON status_slots (session_id);
CREATE INDEX status_slots_subject ON status_slots (subject, generation);
CREATE INDEX status_slots_free_after ON status_slots (free_after);

-- The slot of the session's current generation (NULL: none).
ALTER TABLE sessions ADD COLUMN status_list BIGINT;
ALTER TABLE sessions ADD COLUMN status_idx BIGINT;
ALTER TABLE sessions ADD COLUMN status_gen BIGINT;

-- What the standards outputs need beyond what verifiers apply: detail is
-- JSON (cause, actor, reason, subject, claims), slots the status list
-- entries the revocation made INVALID ("list:idx,list:idx").
ALTER TABLE revocations ADD COLUMN detail TEXT;
ALTER TABLE revocations ADD COLUMN slots TEXT;
