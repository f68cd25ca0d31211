package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/tegata-dev/tegata/token"
)

// Roles of API keys.
const (
	// RoleAdmin may call every endpoint.
	RoleAdmin = "admin"
	// RoleFeed is a verifier's (a gate, the Go middleware): the revocation
	// feed and its position reports, introspection, the key set, and
	// polling Shared Signals streams made for it. It creates, revokes and
	// changes nothing else.
	RoleFeed = "feed"
	// RoleGate is a web gate's (tegata gate --web, gate.Web): what RoleFeed
	// may, plus create sessions (for any subject, with any claims: it
	// signs users in on the app's word), list and revoke them, refresh
	// limited per key, list the verifiers, and sign a subject out
	// everywhere; never signing keys, API keys, the audit trail, bulk
	// revocations, access-only cutoffs or a subject's stored claims. Guard
	// a gate key as you would the power to sign anyone in.
	RoleGate = "gate"
)

// APIKeyRequest asks CreateAPIKey for a new API key.
type APIKeyRequest struct {
	// Name: 1-64 of A-Z a-z 0-9 . _ -, unique among live keys.
	Name string `json:"name"`
	// Role is RoleAdmin, RoleFeed or RoleGate.
	Role string `json:"role"`
	// Reason goes to the audit trail (optional).
	Reason string `json:"reason,omitempty"`
}

// APIKey describes an API key. Key, the secret, is set only in the answer
// to CreateAPIKey: the authority keeps a hash and never shows it again.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	Key       string    `json:"key,omitempty"`
}

// APIKeyRevocation asks RevokeAPIKey to revoke a key.
type APIKeyRevocation struct {
	ID string
	// Reason goes to the audit trail (optional).
	Reason string
}

// CreateAPIKey makes a new API key (POST /v1/apikeys, admin key).
func (c *Client) CreateAPIKey(ctx context.Context, r APIKeyRequest) (APIKey, error) {
	var k APIKey
	err := c.call(ctx, "POST", "/v1/apikeys", r, &k)
	return k, err
}

// APIKeys lists the live API keys, without secrets (GET /v1/apikeys, admin
// key).
func (c *Client) APIKeys(ctx context.Context) ([]APIKey, error) {
	var out struct {
		Keys []APIKey `json:"keys"`
	}
	err := c.call(ctx, "GET", "/v1/apikeys", nil, &out)
	return out.Keys, err
}

// RevokeAPIKey revokes an API key (POST /v1/apikeys/{id}/revoke, admin
// key). The last admin key cannot be revoked (ErrConflict).
func (c *Client) RevokeAPIKey(ctx context.Context, r APIKeyRevocation) error {
	return c.call(ctx, "POST", "/v1/apikeys/"+pathSegment(r.ID)+"/revoke", map[string]string{"reason": r.Reason}, nil)
}

// SigningKey describes one of the authority's signing keys.
type SigningKey struct {
	ID        string `json:"kid"`
	Algorithm string `json:"alg"`
	State     string `json:"state"` // "pending", "active", "retired" or "expired"
	// Use is "access" (access tokens, status lists) or "events" (the
	// RS256 key of Shared Signals events).
	Use       string    `json:"use"`
	CreatedAt time.Time `json:"created_at"`
	// SignFrom is when the key starts (or started) signing; it is
	// published from CreatedAt on.
	SignFrom time.Time `json:"sign_from"`
	// RetiredAt is when it stopped signing; zero while it may sign.
	RetiredAt time.Time `json:"retired_at"`
}

// Keys lists the signing keys (GET /v1/keys, admin key).
func (c *Client) Keys(ctx context.Context) ([]SigningKey, error) {
	var out struct {
		Keys []SigningKey `json:"keys"`
	}
	err := c.call(ctx, "GET", "/v1/keys", nil, &out)
	return out.Keys, err
}

// RotateKey publishes a new signing key now, which signs once the
// authority's publish delay has passed (POST /v1/keys/rotate, admin key).
// reason goes to the audit trail. The answer holds ID, Algorithm and
// SignFrom.
func (c *Client) RotateKey(ctx context.Context, reason string) (SigningKey, error) {
	var k SigningKey
	err := c.call(ctx, "POST", "/v1/keys/rotate", map[string]string{"reason": reason}, &k)
	return k, err
}

// RotateEventKey rotates the key that signs Shared Signals events (RS256)
// as RotateKey rotates the access token key; neither retires the other
// (POST /v1/keys/rotate with use "events", admin key).
func (c *Client) RotateEventKey(ctx context.Context, reason string) (SigningKey, error) {
	var k SigningKey
	err := c.call(ctx, "POST", "/v1/keys/rotate", map[string]string{"reason": reason, "use": "events"}, &k)
	return k, err
}

// AuditQuery selects a page of the audit trail.
type AuditQuery struct {
	// After: only records with a greater ID (0: from the start).
	After int64
	// Limit: at most this many records (0: the authority's default).
	Limit int
}

// AuditRecord is one line of the audit trail.
type AuditRecord struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	Action string    `json:"action"` // "session.revoke", "subject.revoke", "key.add", ...
	Target string    `json:"target"`
}

// AuditPage is one page of the audit trail.
type AuditPage struct {
	Records []AuditRecord `json:"records"`
	// NextAfter is set when more records follow: the After of the next
	// page. Zero on the last page.
	NextAfter int64 `json:"next_after,omitempty"`
}

// Audit reads a page of the audit trail, oldest first (GET /v1/audit, admin
// key).
func (c *Client) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	v := url.Values{}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/audit"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var page AuditPage
	err := c.call(ctx, "GET", path, nil, &page)
	return page, err
}

// Healthy asks the authority whether it is up (GET /healthz, public): nil
// when it answers 200.
func (c *Client) Healthy(ctx context.Context) error {
	return c.call(ctx, "GET", "/healthz", nil, nil)
}

// Discovery is the part of the authority's metadata
// (/.well-known/openid-configuration) a verifier configures itself from.
type Discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
	// Algorithm signs new keys; tokens may still carry the previous key's.
	Algorithm string `json:"tegata_access_token_signing_alg"`
	Audience  string `json:"tegata_access_token_audience"`
	// MaxLifetime is the longest lifetime of an access token that can
	// still be valid, in seconds: after the lifetime is lowered, the old
	// one until its last tokens expire.
	MaxLifetime int64 `json:"tegata_access_token_max_lifetime"`
	// Leeway is the clock skew the authority tolerates, in seconds; a
	// verifier must not allow more.
	Leeway int64 `json:"tegata_leeway"`
}

// Discovery fetches the authority's metadata (GET
// /.well-known/openid-configuration, public).
func (c *Client) Discovery(ctx context.Context) (Discovery, error) {
	var d Discovery
	err := c.call(ctx, "GET", "/.well-known/openid-configuration", nil, &d)
	return d, err
}

// KeySet fetches the authority's published keys (/.well-known/jwks.json,
// public), for token.Verify.
func (c *Client) KeySet(ctx context.Context) (*token.KeySet, error) {
	var raw json.RawMessage
	if err := c.call(ctx, "GET", "/.well-known/jwks.json", nil, &raw); err != nil {
		return nil, err
	}
	ks, err := token.ParseJWKS(raw)
	if err != nil {
		return nil, fmt.Errorf("client: GET /.well-known/jwks.json: %w", err)
	}
	return ks, nil
}
