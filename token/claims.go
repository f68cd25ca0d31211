package token

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Claims of an access token. Times are whole seconds in JSON (NumericDate);
// Verify returns them in UTC.
//
// Application claims are in Extra as encoding/json decodes an any; Decode
// reads them (and the registered ones) into a struct of the caller's
// instead, and Has answers the common question "does roles hold admin".
type Claims struct {
	Issuer   string   // iss
	Subject  string   // sub
	Audience []string // aud: a string or an array of strings in JSON

	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf; zero if absent
	Expiry    time.Time // exp

	ID         string // jti
	SessionID  string // sid
	Generation int64  // sgen: the subject generation that subject cutoffs compare

	// Status is the token's Token Status List entry ("status" claim); nil
	// when the authority publishes no status lists.
	Status *StatusRef

	// JKT is cnf.jkt (RFC 9449 §6.1): the RFC 7638 SHA-256 thumbprint,
	// base64url, of the DPoP key the token is bound to; empty for a bearer
	// token. A bound token is good only with a DPoP proof signed by that
	// key, which Verify does not check (see Expect.Bound).
	JKT string

	// Extra holds every other (application) claim, such as roles or scope,
	// with the types encoding/json gives an any. It is nil if there are none.
	Extra map[string]any
}

// Decode unmarshals the token's claims, registered and application alike,
// into v with encoding/json, as go-oidc's Claims does:
//
//	var app struct {
//		Roles  []string `json:"roles"`
//		Tenant string   `json:"tenant_id"`
//	}
//	err := claims.Decode(&app)
//
// It encodes the claims as the token carries them and decodes that into v,
// so v sees what Extra holds: numbers have passed through float64, as in
// Extra. It never changes c, and costs one encoding and one decoding per
// call.
func (c *Claims) Decode(v any) error {
	data, err := json.Marshal(c.asMap())
	if err != nil {
		return fmt.Errorf("token: decode claims: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("token: decode claims: %w", err)
	}
	return nil
}

// asMap returns the claims as the JSON object a token would carry.
func (c *Claims) asMap() map[string]any {
	m := maps.Clone(c.Extra)
	if m == nil {
		m = map[string]any{}
	}
	m["iss"], m["sub"], m["jti"], m["sid"], m["sgen"] = c.Issuer, c.Subject, c.ID, c.SessionID, c.Generation
	if c.JKT != "" {
		m["cnf"] = map[string]any{"jkt": c.JKT}
	}
	switch len(c.Audience) {
	case 0:
	case 1:
		m["aud"] = c.Audience[0]
	default:
		m["aud"] = c.Audience
	}
	for name, t := range map[string]time.Time{"iat": c.IssuedAt, "nbf": c.NotBefore, "exp": c.Expiry} {
		if !t.IsZero() {
			m[name] = t.Unix()
		}
	}
	return m
}

// Has reports whether application claim name holds value: the claim is
// that string, or an array with that string among its elements (as roles
// and groups are, RFC 9068 §2.2.3.1). A scope claim, a space-separated
// string, is read with HasScope instead.
func (c *Claims) Has(name, value string) bool {
	switch v := c.Extra[name].(type) {
	case string:
		return v == value
	case []any:
		return slices.Contains(v, any(value))
	case []string: // claims built by hand
		return slices.Contains(v, value)
	}
	return false
}

// HasScope reports whether the scope claim (RFC 9068 §2.2.3: a string of
// space-separated scopes, RFC 6749 §3.3) includes every one of scopes.
func (c *Claims) HasScope(scopes ...string) bool {
	s, _ := c.Extra["scope"].(string)
	have := strings.Fields(s)
	for _, want := range scopes {
		if !slices.Contains(have, want) {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of c: nothing in it shares memory that either
// copy could change (Audience, Extra and the maps and slices inside it).
func (c *Claims) Clone() *Claims {
	out := *c
	out.Audience = slices.Clone(c.Audience)
	if c.Extra != nil {
		out.Extra = cloneObject(c.Extra)
	}
	return &out
}

// cloneObject and cloneValue copy JSON values as encoding/json decodes them
// (map[string]any, []any and scalars); other types, in claims built by
// hand, are copied as they are. maps.Clone copies the map in one piece;
// only the values that can be changed in place (maps, slices) are then
// replaced by copies.
func cloneObject(m map[string]any) map[string]any {
	out := maps.Clone(m)
	for k, v := range m {
		switch v.(type) {
		case map[string]any, []any, []string:
			out[k] = cloneValue(v)
		}
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneObject(v)
	case []any:
		out := slices.Clone(v)
		for i, e := range v {
			switch e.(type) {
			case map[string]any, []any, []string:
				out[i] = cloneValue(e)
			}
		}
		return out
	case []string:
		return slices.Clone(v)
	}
	return v
}

// IsReserved reports whether name is a claim this package sets or reads
// itself, which Extra must not carry: iss sub aud exp nbf iat jti sid sgen
// status, and cnf, which binds a token to a DPoP key (Claims.JKT). The other claims RFC 9068
// describes (scope, client_id, roles, groups, entitlements, auth_time, acr,
// amr) belong to the application and travel in Extra.
func IsReserved(name string) bool {
	switch name {
	case "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "sgen", "status", "cnf":
		return true
	}
	return false
}
