package client

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/internal/keyproof"
)

// DefaultEarly is how long before its expiry a TokenSource replaces an
// access token when TokenSourceOptions.Early is zero.
const DefaultEarly = 30 * time.Second

// TokenSourceOptions tunes a TokenSource; the zero value is usable.
type TokenSourceOptions struct {
	// Early: an access token expiring within this long is refreshed before
	// it is handed out, so a request sent with it does not arrive expired.
	// Zero: DefaultEarly.
	Early time.Duration
	// OnRefresh, when set, is called with the new tokens after every
	// refresh, before Token returns. Refresh tokens rotate: a program that
	// keeps its session across restarts stores the new refresh token here,
	// since the one it started with is spent.
	OnRefresh func(Tokens)
	// DPoP is the device's key for a DPoP-bound session (SessionRequest
	// DPoPJKT is its Thumbprint): refreshes carry a proof signed by it, and
	// Authorize signs one for every request. When the authority asks for
	// server nonces (use_dpop_nonce), a refresh is retried once with the
	// nonce it sent, and the nonce of each answer goes into the next
	// refresh's proof.
	DPoP crypto.Signer
}

// TokenSource hands out a current access token for a session a Go program
// holds itself (a CLI signed in as a user, a device), refreshing it
// shortly before it expires, as golang.org/x/oauth2's TokenSource does.
// Build it with Client.TokenSource. Safe for concurrent use: callers that
// find the token due wait for one refresh, since two refreshes with the
// same refresh token would look like theft to the authority.
type TokenSource struct {
	c    *Client
	opts TokenSourceOptions

	mu sync.Mutex
	t  Tokens
	// nonce is the authority's last DPoP-Nonce, for the next refresh's
	// proof.
	nonce string

	// nmu guards the resource servers' nonces apart from mu, which is held
	// through a refresh.
	nmu    sync.Mutex
	nonces map[string]originNonce // by origin; at most maxNonceOrigins
	nseq   uint64
}

// TokenSource returns a TokenSource that starts from t (from CreateSession
// or a stored refresh) and refreshes through c, which needs no API key for
// that.
func (c *Client) TokenSource(t Tokens, opts TokenSourceOptions) *TokenSource {
	if opts.Early <= 0 {
		opts.Early = DefaultEarly
	}
	return &TokenSource{c: c, opts: opts, t: t}
}

// Token returns an access token valid for at least Early, refreshing first
// if needed. A failed refresh returns its error and keeps the tokens, so a
// later call tries again; ErrInvalidGrant means the session is over (signed
// out, revoked, expired) and the user must sign in again.
func (s *TokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t.AccessToken != "" && time.Until(s.t.AccessExpiresAt) > s.opts.Early {
		return s.t.AccessToken, nil
	}
	t, nonce, err := s.c.refresh(ctx, s.t.RefreshToken, s.opts.DPoP, s.nonce)
	s.nonce = nonce
	if err != nil {
		return "", err
	}
	s.t = t
	if s.opts.OnRefresh != nil {
		s.opts.OnRefresh(t)
	}
	return t.AccessToken, nil
}

// Tokens returns the tokens the source holds now: the refresh token to
// keep, the session id to sign out with.
func (s *TokenSource) Tokens() Tokens {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t
}

// Authorize sets req's Authorization to a current access token: "Bearer
// <token>", or with a DPoP key "DPoP <token>" and a DPoP header holding a
// fresh proof for req's method and URL (RFC 9449 §7.1), carrying the last
// nonce req's origin sent to this source's Transport, if any.
func (s *TokenSource) Authorize(req *http.Request) error {
	return s.authorize(req, s.nonceFor(originOf(req.URL)))
}

// authorize is Authorize with the proof's nonce given.
func (s *TokenSource) authorize(req *http.Request, nonce string) error {
	tok, err := s.Token(req.Context())
	if err != nil {
		return err
	}
	if s.opts.DPoP == nil {
		req.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
	proof, err := dpop.NewProof(s.opts.DPoP, req.Method, req.URL.String(), tok, nonce, time.Now())
	if err != nil {
		return fmt.Errorf("client: DPoP proof: %w", err)
	}
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", proof)
	return nil
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of a DPoP public key
// (Ed25519, P-256 or RSA): the SessionRequest.DPoPJKT that binds a session
// to it.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	k, err := keyproof.PublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	return k.Thumbprint, nil
}
