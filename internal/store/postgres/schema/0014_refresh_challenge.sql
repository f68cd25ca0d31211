-- The issue time of the newest DBSC challenge a proof presented with this
-- refresh token signed (microseconds; NULL: none). A presentation of the
-- token, rotation or grace replay, must sign a newer one, so a proof
-- captured in flight is worth nothing a second time (store.Rotation.Check).
ALTER TABLE refresh_tokens ADD COLUMN challenge_at BIGINT;
