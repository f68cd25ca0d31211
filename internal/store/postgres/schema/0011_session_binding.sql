-- A session bound to a key its device holds (docs/security.md): DPoP for
-- API clients, DBSC for browsers at the web gate. binding_kind is 'dpop'
-- or 'dbsc', NULL while unbound; binding_jkt is the key's RFC 7638 SHA-256
-- thumbprint, which DPoP-bound access tokens carry as cnf.jkt;
-- binding_key is the public key as a canonical JWK, which checks later
-- proofs (DBSC refresh). A session is bound at most once: all four
-- columns are set together, never changed after.
ALTER TABLE sessions ADD COLUMN binding_kind TEXT;
ALTER TABLE sessions ADD COLUMN binding_jkt TEXT;
ALTER TABLE sessions ADD COLUMN binding_key TEXT;
ALTER TABLE sessions ADD COLUMN bound_at BIGINT;
