package client

import (
	"context"
	"encoding/json"
	"time"
)

// Kinds of Binding.
const (
	BindingDPoP = "dpop" // an API client proving its key per request (RFC 9449)
	BindingDBSC = "dbsc" // a browser's Device Bound Session Credentials key
)

// Binding is the device key a session is bound to: its tokens are good
// only with a proof signed by that key.
type Binding struct {
	Kind string `json:"kind"` // BindingDPoP or BindingDBSC
	// JKT is the key's RFC 7638 SHA-256 thumbprint, base64url.
	JKT     string    `json:"jkt"`
	BoundAt time.Time `json:"bound_at"`
	// JWK is the public key, in the answers about one session
	// (Client.Session, Client.BindSession), to check proofs with.
	JWK json.RawMessage `json:"jwk,omitempty"`
}

// BindRequest asks BindSession to bind a session to a device key whose
// possession the caller has checked (a DBSC registration at a web gate).
type BindRequest struct {
	SessionID string          `json:"-"`
	Kind      string          `json:"kind"` // BindingDPoP or BindingDBSC
	JWK       json.RawMessage `json:"jwk"`  // the public key; private members are refused
	// RefreshToken, when set, is a refresh token the device holds; the
	// authority refuses the binding (ErrInvalidGrant) unless it belongs to
	// the session. A web gate sends it at DBSC registration.
	RefreshToken string `json:"refresh_token,omitempty"`
	Reason       string `json:"reason,omitempty"`
}

// Session returns one live session with its binding and bound key (GET
// /v1/sessions/{sid}, admin or gate key). ErrNotFound if it is not live.
func (c *Client) Session(ctx context.Context, sessionID string) (Session, error) {
	var out Session
	err := c.call(ctx, "GET", "/v1/sessions/"+pathSegment(sessionID), nil, &out)
	return out, err
}

// BindSession binds a live session to a device key (POST
// /v1/sessions/{sid}/bind, admin or gate key) and returns it as bound.
// Binding again to the same key changes nothing; ErrConflict if the
// session is bound to another key (a binding is never replaced);
// ErrNotFound if it is not live.
func (c *Client) BindSession(ctx context.Context, r BindRequest) (Session, error) {
	var out Session
	err := c.call(ctx, "POST", "/v1/sessions/"+pathSegment(r.SessionID)+"/bind", r, &out)
	return out, err
}

// BindingFailed reports that a proof for a bound session failed (POST
// /v1/sessions/{sid}/binding-failed, admin or gate key): the session is
// revoked as stolen, like a reused refresh token. ErrConflict if the
// session is not bound.
func (c *Client) BindingFailed(ctx context.Context, r SessionRevocation) (Revocation, error) {
	var out Revocation
	err := c.call(ctx, "POST", "/v1/sessions/"+pathSegment(r.SessionID)+"/binding-failed", map[string]string{"reason": r.Reason}, &out)
	return out, err
}
