package httpapi

import (
	"net/http"
	"strings"
	"time"
)

func (s *server) jwks(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// Short enough that a rotation's publish delay (default 1 minute)
	// reaches caches before the new key signs.
	w.Header().Set("Cache-Control", "public, max-age=30")
	if s.epoch != "" {
		// The log these keys go with: a verifier whose feed follows
		// another one does not trust them until it has resynchronised.
		w.Header().Set("Tegata-Epoch", s.epoch)
	}
	_, _ = w.Write(s.a.JWKS())
	return nil
}

// discovery is an OpenID-style metadata document (RFC 8414 fields) so
// verifiers configure themselves from the issuer URL.
func (s *server) discovery(w http.ResponseWriter, r *http.Request) error {
	cfg := s.a.Config()
	// issuer is the iss of every token, unchanged (RFC 8414 §3.3):
	// verifiers take it from here. Only the endpoint URLs drop a slash.
	base := strings.TrimSuffix(cfg.Issuer, "/")
	doc := map[string]any{
		"issuer":                          cfg.Issuer,
		"jwks_uri":                        base + "/.well-known/jwks.json",
		"introspection_endpoint":          base + "/v1/introspect",
		"revocation_endpoint":             base + "/v1/token/revoke",
		"tegata_refresh_endpoint":         base + "/v1/token/refresh",
		"tegata_sessions_endpoint":        base + "/v1/sessions",
		"tegata_feed_endpoint":            base + "/v1/feed",
		"tegata_access_token_signing_alg": cfg.Algorithm,
		"tegata_access_token_audience":    cfg.Audience,
		// RFC 9449 §5.1: the algorithms DPoP proofs may be signed with.
		"dpop_signing_alg_values_supported": []string{"ES256", "EdDSA", "Ed25519"},
		// The longest lifetime of a token that can still be valid (longer
		// than --access-ttl for a while after it was lowered), and the
		// clock skew tolerated: verifiers follow both, and refuse to be
		// configured with more leeway than the authority keeps entries for.
		"tegata_access_token_max_lifetime":      ceilSeconds(s.a.MaxLifetime()),
		"tegata_leeway":                         ceilSeconds(cfg.Leeway),
		"token_endpoint_auth_methods_supported": []string{"none"},
	}
	if s.statusLists != nil {
		// draft-ietf-oauth-status-list-21 §9.1.
		doc["status_list_aggregation_endpoint"] = base + "/v1/statuslists"
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// ceilSeconds is d in whole seconds, rounded up: a published bound must not
// be shorter than the real one.
func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }
