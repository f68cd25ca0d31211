package verifier

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/tegata-dev/tegata/token"
)

// Claims are the claims of a verified access token. They are immutable:
// every method reads, and what a method returns is the caller's own (an
// array or object claim is copied), so Verify hands every request for the
// same token the claims it cached, with no copy and no allocation, and no
// handler can change what another one sees. Copy returns a deep copy as
// a token.Claims for code that needs the plain struct.
//
// Only Verify makes Claims; the zero value has no claims at all.
type Claims struct {
	t token.Claims
}

// newClaims takes ownership of c, which nothing may change afterwards.
func newClaims(c *token.Claims) *Claims { return &Claims{t: *c} }

// Issuer is iss.
func (c *Claims) Issuer() string { return c.t.Issuer }

// Subject is sub: the user (or service) the token speaks for.
func (c *Claims) Subject() string { return c.t.Subject }

// Audience is aud, as a new slice.
func (c *Claims) Audience() []string { return slices.Clone(c.t.Audience) }

// IssuedAt is iat, in UTC.
func (c *Claims) IssuedAt() time.Time { return c.t.IssuedAt }

// NotBefore is nbf in UTC, zero when the token has none.
func (c *Claims) NotBefore() time.Time { return c.t.NotBefore }

// Expiry is exp, in UTC.
func (c *Claims) Expiry() time.Time { return c.t.Expiry }

// ID is jti, unique per token.
func (c *Claims) ID() string { return c.t.ID }

// SessionID is sid: the session (a signed-in device) the token belongs to.
func (c *Claims) SessionID() string { return c.t.SessionID }

// Generation is sgen, the subject generation that subject cutoffs compare.
func (c *Claims) Generation() int64 { return c.t.Generation }

// Status is the token's Token Status List entry ("status" claim); false
// when the authority publishes no status lists.
func (c *Claims) Status() (token.StatusRef, bool) {
	if c.t.Status == nil {
		return token.StatusRef{}, false
	}
	return *c.t.Status, true
}

// Claim returns the application claim name (roles, scope, tenant_id, ...)
// with the type encoding/json gives an any, and whether the token has it.
// Strings, numbers, booleans and null come as they are; an array or object
// is a deep copy, the caller's to change. Has and HasScope answer the
// common questions without a copy.
func (c *Claims) Claim(name string) (any, bool) {
	v, ok := c.t.Extra[name]
	if !ok {
		return nil, false
	}
	switch v.(type) {
	case map[string]any, []any, []string:
		// token.Claims.Clone is the one deep copy of claim values.
		return (&token.Claims{Extra: map[string]any{name: v}}).Clone().Extra[name], true
	}
	return v, true
}

// ClaimJSON returns application claim name as compact JSON, HTML
// characters unescaped, and whether the token has it: for an app that
// decodes one claim into a type of its own (json.Unmarshal(raw, &roles)),
// or passes it on, without a copy of the value.
func (c *Claims) ClaimJSON(name string) ([]byte, bool) {
	v, ok := c.t.Extra[name]
	if !ok {
		return nil, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Verify decoded the value from JSON: it always encodes.
		return nil, false
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}

// ClaimNames returns the names of the application claims, sorted.
func (c *Claims) ClaimNames() []string {
	names := make([]string, 0, len(c.t.Extra))
	for name := range c.t.Extra {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Has reports whether application claim name holds value: the claim is
// that string, or an array with that string among its elements (as roles
// and groups are). A scope claim is read with HasScope instead.
func (c *Claims) Has(name, value string) bool { return c.t.Has(name, value) }

// HasScope reports whether the scope claim (a string of space-separated
// scopes) includes every one of scopes.
func (c *Claims) HasScope(scopes ...string) bool { return c.t.HasScope(scopes...) }

// Decode unmarshals the claims, registered and application alike, into v
// with encoding/json (see token.Claims.Decode). v is the caller's own.
func (c *Claims) Decode(v any) error { return c.t.Decode(v) }

// Copy returns a deep copy of the claims as a token.Claims, the caller's
// to change (to mint a similar token in a test, say).
func (c *Claims) Copy() *token.Claims { return c.t.Clone() }
