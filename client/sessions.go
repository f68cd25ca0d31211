package client

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/dpop"
)

// SessionRequest asks CreateSession to sign a subject in.
type SessionRequest struct {
	// Subject is your user id: 1-255 bytes of UTF-8, no control characters.
	Subject string `json:"subject"`
	// Device labels the session in the user's list of devices (optional).
	Device string `json:"device,omitempty"`
	// Claims are copied into every access token of the session (roles,
	// scope, tenant...); reserved names (iss, sub, exp...) are refused.
	Claims map[string]any `json:"claims,omitempty"`
	// DPoPJKT binds the session to the device's DPoP key (RFC 9449), given
	// by its RFC 7638 thumbprint (Thumbprint): the session's access tokens
	// are good only with a proof signed by that key, and so is its refresh.
	DPoPJKT string `json:"dpop_jkt,omitempty"`
}

// Tokens is the answer to sign-in and refresh.
type Tokens struct {
	SessionID        string    `json:"session_id"`
	AccessToken      string    `json:"access_token"`
	TokenType        string    `json:"token_type"` // "Bearer", or "DPoP" for a DPoP-bound session
	ExpiresIn        int64     `json:"expires_in"` // seconds, as of the answer
	AccessExpiresAt  time.Time `json:"access_expires_at"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
}

// Session is one entry of a subject's list of devices.
type Session struct {
	ID              string    `json:"session_id"`
	Device          string    `json:"device"`
	CreatedAt       time.Time `json:"created_at"`
	LastRefreshedAt time.Time `json:"last_refreshed_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	// Binding is the device key the session is bound to; nil: unbound
	// (its tokens work from anywhere until they expire or are revoked).
	Binding *Binding `json:"binding,omitempty"`
}

// CreateSession signs a subject in (POST /v1/sessions, admin or gate key) and
// returns the session's first tokens.
func (c *Client) CreateSession(ctx context.Context, r SessionRequest) (Tokens, error) {
	var t Tokens
	err := c.call(ctx, "POST", "/v1/sessions", r, &t)
	return t, err
}

// Refresh exchanges a refresh token for new tokens (POST /v1/token/refresh,
// no API key needed; with an admin or gate key it is rate limited per key
// rather than per address, as a web gate refreshing for all its browsers
// needs). The presented token is spent; presenting it again later is
// treated as theft and ends the session. ErrInvalidGrant: sign in again.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	t, _, err := c.refresh(ctx, refreshToken, nil, "")
	return t, err
}

// refresh is Refresh with a DPoP proof signed by key, when set, carrying
// nonce, the authority's last DPoP-Nonce ("" if none came yet). An answer
// use_dpop_nonce is retried once with the nonce it brings (RFC 9449 §8).
// It returns the nonce to sign the next proof with.
func (c *Client) refresh(ctx context.Context, refreshToken string, key crypto.Signer, nonce string) (Tokens, string, error) {
	t, next, err := c.refreshOnce(ctx, refreshToken, key, nonce)
	var e *Error
	if key != nil && errors.As(err, &e) && e.Code == "use_dpop_nonce" && e.DPoPNonce != "" && e.DPoPNonce != nonce {
		nonce = e.DPoPNonce
		t, next, err = c.refreshOnce(ctx, refreshToken, key, nonce)
	}
	if next == "" {
		next = nonce
	}
	return t, next, err
}

func (c *Client) refreshOnce(ctx context.Context, refreshToken string, key crypto.Signer, nonce string) (Tokens, string, error) {
	var t Tokens
	body, err := json.Marshal(map[string]string{"refresh_token": refreshToken})
	if err != nil {
		return t, "", err
	}
	req, err := c.request(ctx, "POST", "/v1/token/refresh", bytes.NewReader(body))
	if err != nil {
		return t, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != nil {
		proof, err := dpop.NewProof(key, "POST", req.URL.String(), "", nonce, time.Now())
		if err != nil {
			return t, "", fmt.Errorf("client: DPoP proof: %w", err)
		}
		req.Header.Set("DPoP", proof)
	}
	h, err := c.sendHeader(req, &t)
	if err != nil {
		return t, "", err
	}
	return t, h.Get("DPoP-Nonce"), nil
}

// RefreshDBSC is Refresh for a session bound to a browser's DBSC key, with
// the browser's proof (its Secure-Session-Response JWT over a challenge
// issued for refreshToken). ErrUseDBSCChallenge asks for a proof over a
// fresh challenge; ErrInvalidGrant after a proof signed by another key
// means the session was revoked as stolen.
func (c *Client) RefreshDBSC(ctx context.Context, refreshToken, proof string) (Tokens, error) {
	var t Tokens
	err := c.call(ctx, "POST", "/v1/token/refresh", map[string]string{"refresh_token": refreshToken, "dbsc_proof": proof}, &t)
	return t, err
}

// Sessions lists a subject's live sessions, newest first (GET
// /v1/subjects/{sub}/sessions, admin or gate key).
func (c *Client) Sessions(ctx context.Context, subject string) ([]Session, error) {
	var out struct {
		Sessions []Session `json:"sessions"`
	}
	err := c.call(ctx, "GET", "/v1/subjects/"+pathSegment(subject)+"/sessions", nil, &out)
	return out.Sessions, err
}
