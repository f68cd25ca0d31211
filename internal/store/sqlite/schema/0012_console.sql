-- The operator console filters the audit trail by actor, action and
-- target, newest first, and counts the last hour's records by action.
-- (Its subject search reads the subjects' primary key, whose BINARY
-- collation is byte order already.)
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_action ON audit (action, id);
CREATE INDEX audit_target ON audit (target, id);
CREATE INDEX audit_at ON audit (at, action);
