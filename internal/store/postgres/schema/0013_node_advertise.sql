-- A node's advertised URL, which verifiers follow as the cluster's
-- membership ('' when the node does not advertise one), and whether the
-- node wrote its record as it shut down (a check for running nodes passes
-- over it; the record still bounds the leases the node granted).
ALTER TABLE feed_nodes ADD COLUMN advertise TEXT NOT NULL DEFAULT '';
ALTER TABLE feed_nodes ADD COLUMN stopped BIGINT NOT NULL DEFAULT 0;
