-- The operator console searches subjects by prefix: a range in byte order
-- (COLLATE "C"), which the primary key, in the database's collation,
-- cannot serve unless that collation is C. It filters the audit trail by
-- actor, action and target, newest first, and counts the last hour's
-- records by action (from the index alone).
CREATE INDEX subjects_bytes ON subjects (subject COLLATE "C");
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_action ON audit (action, id);
CREATE INDEX audit_target ON audit (target, id);
CREATE INDEX audit_at ON audit (at, action);
