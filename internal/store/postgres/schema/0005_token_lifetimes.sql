-- The access token lifetimes authority nodes mint with, each with the time
-- until which a node may mint tokens that live that long (a lease the node
-- renews while it runs). A revocation entry must outlive the longest-lived
-- token it covers, also after an operator lowered the lifetime.

CREATE TABLE token_lifetimes (
	lifetime     BIGINT PRIMARY KEY,
	minted_until BIGINT NOT NULL
);
