package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// SessionRevocation asks RevokeSession to sign one session out.
type SessionRevocation struct {
	SessionID string
	// Reason goes to the audit trail (optional).
	Reason string
	// Confirm, when positive, makes the call wait up to that long (capped
	// by the authority) for the revocation to be in force on every
	// verifier; the answer's Confirmation says whether it was.
	Confirm time.Duration
}

// Scopes of a subject revocation.
const (
	// ScopeSessions ends every session of the subject and rejects every
	// access token issued before now: sign out everywhere.
	ScopeSessions = "sessions"
	// ScopeAccess rejects the access tokens issued before now and keeps
	// the sessions: the next refresh mints tokens with the current claims
	// (a role change that takes effect at once).
	ScopeAccess = "access"
)

// SubjectRevocation asks RevokeSubject to cut a subject off.
type SubjectRevocation struct {
	Subject string
	// Scope is ScopeSessions (the default when empty) or ScopeAccess.
	Scope string
	// Claims, when not nil, replaces the claims of the subject's live
	// sessions for the tokens they mint from now on; an empty map clears
	// them.
	Claims map[string]any
	// Reason goes to the audit trail (optional).
	Reason string
	// Confirm is as for SessionRevocation.
	Confirm time.Duration
}

// Revocation is the answer to a revocation: whether anything changed and,
// if so, the entry appended to the revocation log.
type Revocation struct {
	// Revoked is false when there was nothing left to revoke (the session
	// was already revoked); Entry is nil then.
	Revoked bool      `json:"revoked"`
	Entry   *LogEntry `json:"entry"`
	// Confirmation answers Confirm (nil without).
	Confirmation *Confirmation `json:"confirmation,omitempty"`
}

// LogEntry is an entry of the revocation log, as verifiers receive it.
type LogEntry struct {
	Seq        int64     `json:"seq"`
	Kind       string    `json:"kind"` // "session" or "subject"
	SessionID  string    `json:"sid,omitempty"`
	Subject    string    `json:"sub,omitempty"`
	Generation int64     `json:"sgen,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// ExpiresAt is when no token the entry covers can still be valid.
	ExpiresAt time.Time `json:"expires_at"`
}

// RevokeSession signs one session out (POST /v1/sessions/{sid}/revoke,
// admin or gate key): its access tokens are refused by every verifier within
// milliseconds and its refresh token stops working.
func (c *Client) RevokeSession(ctx context.Context, r SessionRevocation) (Revocation, error) {
	var out Revocation
	err := c.call(ctx, "POST", "/v1/sessions/"+pathSegment(r.SessionID)+"/revoke"+confirmQuery(r.Confirm), map[string]string{"reason": r.Reason}, &out)
	return out, err
}

// RevokeSubject cuts a subject off (POST /v1/subjects/{sub}/revoke; admin
// key, or a gate key with ScopeSessions and no Claims); see
// SubjectRevocation.
func (c *Client) RevokeSubject(ctx context.Context, r SubjectRevocation) (Revocation, error) {
	body := map[string]any{"reason": r.Reason}
	if r.Scope != "" {
		body["scope"] = r.Scope
	}
	if r.Claims != nil {
		body["claims"] = r.Claims
	}
	var out Revocation
	err := c.call(ctx, "POST", "/v1/subjects/"+pathSegment(r.Subject)+"/revoke"+confirmQuery(r.Confirm), body, &out)
	return out, err
}

// RevokeItem is one item of RevokeMany: a session (SessionID), or else a
// subject (Subject, with Scope ScopeSessions or ScopeAccess, and Claims
// that, when non-nil, replace the claims of future tokens; an empty map
// clears them).
type RevokeItem struct {
	SessionID string
	Subject   string
	Scope     string
	Claims    map[string]any
}

// revokeItemJSON is a RevokeItem on the wire: claims are sent whenever
// they are non-nil, so an empty map reaches the authority and clears them
// (omitempty on a map would drop it).
type revokeItemJSON struct {
	SessionID string          `json:"session_id,omitempty"`
	Subject   string          `json:"subject,omitempty"`
	Scope     string          `json:"scope,omitempty"`
	Claims    *map[string]any `json:"claims,omitempty"`
}

func wireItems(items []RevokeItem) []revokeItemJSON {
	out := make([]revokeItemJSON, len(items))
	for i, it := range items {
		out[i] = revokeItemJSON{SessionID: it.SessionID, Subject: it.Subject, Scope: it.Scope}
		if it.Claims != nil {
			out[i].Claims = &items[i].Claims
		}
	}
	return out
}

// ItemOutcome is what RevokeMany did with one item: Revoked with the seq of
// its revocation log entry, or not (a session already revoked), and the
// live sessions the item found: for a session 1 when it ended it; for a
// subject, the sessions it signed out (ScopeSessions) or cut the access
// tokens of (ScopeAccess). A subject with 0 had nothing to sign out: a
// typo, or a user already signed out everywhere.
type ItemOutcome struct {
	Revoked  bool  `json:"revoked"`
	Seq      int64 `json:"seq"`
	Sessions int   `json:"sessions"`
}

// MaxRevokeItems is the most items one RevokeMany call may carry.
const MaxRevokeItems = 10_000

// BulkRevocation asks RevokeMany to revoke many sessions and subjects.
type BulkRevocation struct {
	// Items: 1 to MaxRevokeItems.
	Items []RevokeItem
	// Reason goes to the audit trail, on every item's record (optional).
	Reason string
	// Confirm is as for SessionRevocation; the wait covers every item.
	Confirm time.Duration
}

// BulkRevoked is the answer to RevokeMany: outcome i is item i's.
type BulkRevoked struct {
	Items []ItemOutcome `json:"items"`
	// Confirmation answers Confirm (nil without).
	Confirmation *Confirmation `json:"confirmation,omitempty"`
}

// RevokeMany revokes up to MaxRevokeItems sessions and subjects in one
// call (POST /v1/revocations, admin key), all or nothing: on an *Error
// nothing was revoked, and the description names the first bad item
// ("items[3]: ...").
func (c *Client) RevokeMany(ctx context.Context, r BulkRevocation) (BulkRevoked, error) {
	var out BulkRevoked
	err := c.call(ctx, "POST", "/v1/revocations"+confirmQuery(r.Confirm), map[string]any{"items": wireItems(r.Items), "reason": r.Reason}, &out)
	if err == nil && len(out.Items) != len(r.Items) {
		err = fmt.Errorf("client: POST /v1/revocations: %d outcomes for %d items", len(out.Items), len(r.Items))
	}
	return out, err
}

// TokenRevocation asks RevokeToken to sign out the session of a token.
type TokenRevocation struct {
	// Token is an access or refresh token.
	Token string
	// Confirm is as for SessionRevocation. It needs an admin API key
	// (Client.APIKey): the call holds a request open.
	Confirm time.Duration
}

// RevokeToken signs out the session of an access or refresh token (POST
// /v1/token/revoke, RFC 7009): what a client calls on sign-out, with no API
// key unless r.Confirm is set. An unknown or invalid token is not an error.
// The Confirmation is nil without r.Confirm.
func (c *Client) RevokeToken(ctx context.Context, r TokenRevocation) (*Confirmation, error) {
	var out struct {
		Confirmation *Confirmation `json:"confirmation"`
	}
	err := c.form(ctx, "/v1/token/revoke"+confirmQuery(r.Confirm), r.Token, &out)
	return out.Confirmation, err
}

// Introspection is the authority's verdict on an access token (RFC 7662).
type Introspection struct {
	// Active: the token is valid and not revoked; every other field is
	// zero when it is not.
	Active     bool
	Issuer     string
	Subject    string
	Audience   []string
	IssuedAt   time.Time
	Expiry     time.Time
	ID         string // jti
	SessionID  string // sid
	Generation int64  // sgen
	// Claims are the application claims (roles, scope...), as
	// encoding/json decodes them.
	Claims map[string]any
}

// Introspect asks the authority whether an access token is valid and not
// revoked (POST /v1/introspect, RFC 7662; an admin, feed or gate key).
func (c *Client) Introspect(ctx context.Context, token string) (Introspection, error) {
	var raw map[string]json.RawMessage
	if err := c.form(ctx, "/v1/introspect", token, &raw); err != nil {
		return Introspection{}, err
	}
	in, err := introspection(raw)
	if err != nil {
		return Introspection{}, fmt.Errorf("client: POST /v1/introspect: decoding the answer: %w", err)
	}
	return in, nil
}

// introspection reads an RFC 7662 answer: the members it defines, and the
// others as application claims.
func introspection(raw map[string]json.RawMessage) (Introspection, error) {
	var in Introspection
	var aud audience
	var iat, exp int64
	fields := map[string]any{"active": &in.Active, "iss": &in.Issuer, "sub": &in.Subject, "aud": &aud,
		"iat": &iat, "exp": &exp, "jti": &in.ID, "sid": &in.SessionID, "sgen": &in.Generation, "token_type": new(string)}
	for name, v := range raw {
		if dst, known := fields[name]; known {
			if err := json.Unmarshal(v, dst); err != nil {
				return Introspection{}, fmt.Errorf("member %q: %w", name, err)
			}
			continue
		}
		var claim any
		if err := json.Unmarshal(v, &claim); err != nil {
			return Introspection{}, fmt.Errorf("member %q: %w", name, err)
		}
		if in.Claims == nil {
			in.Claims = map[string]any{}
		}
		in.Claims[name] = claim
	}
	in.Audience = aud
	if iat != 0 {
		in.IssuedAt = time.Unix(iat, 0).UTC()
	}
	if exp != 0 {
		in.Expiry = time.Unix(exp, 0).UTC()
	}
	return in, nil
}

// audience reads aud as RFC 7662 allows it: a string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}
