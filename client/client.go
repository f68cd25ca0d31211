// Package client is a Go client for the tegata authority's HTTP API, used
// by app backends (create sessions, revoke) and by the tegata CLI. It holds
// no state beyond its configuration and is safe for concurrent use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/secret"
)

// Client calls one authority.
type Client struct {
	BaseURL    string // e.g. http://127.0.0.1:8080
	APIKey     string // admin key; not needed for Refresh and RevokeToken
	HTTPClient *http.Client
}

// Error is an error answer from the authority.
type Error struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("authority answered %d %s: %s", e.Status, e.Code, e.Description)
}

// Tokens is the answer to sign-in and refresh.
type Tokens struct {
	SessionID        string    `json:"session_id"`
	AccessToken      string    `json:"access_token"`
	TokenType        string    `json:"token_type"`
	ExpiresIn        int64     `json:"expires_in"`
	AccessExpiresAt  time.Time `json:"access_expires_at"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
}

// Session is one entry of a subject's devices list.
type Session struct {
	ID              string    `json:"session_id"`
	Device          string    `json:"device"`
	CreatedAt       time.Time `json:"created_at"`
	LastRefreshedAt time.Time `json:"last_refreshed_at"`
	ExpiresAt       time.Time `json:"expires_at"`
}

// Revocation is the answer to a revoke call.
type Revocation struct {
	Revoked bool `json:"revoked"`
	Entry   *struct {
		Seq int64 `json:"seq"`
	} `json:"entry"`
}

// CreateSession signs a subject in.
func (c *Client) CreateSession(ctx context.Context, subject, device string, claims map[string]any) (Tokens, error) {
	var t Tokens
	err := c.call(ctx, "POST", "/v1/sessions", map[string]any{"subject": subject, "device": device, "claims": claims}, &t)
	return t, err
}

// Refresh rotates a refresh token.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	var t Tokens
	err := c.call(ctx, "POST", "/v1/token/refresh", map[string]string{"refresh_token": refreshToken}, &t)
	return t, err
}

// RevokeSession signs one session out.
func (c *Client) RevokeSession(ctx context.Context, sid, reason string) (Revocation, error) {
	var r Revocation
	err := c.call(ctx, "POST", "/v1/sessions/"+pathSegment(sid)+"/revoke", map[string]string{"reason": reason}, &r)
	return r, err
}

// RevokeSubject cuts off a subject: scope "sessions" or "access".
// claims, when non-nil, replaces the claims of future tokens.
func (c *Client) RevokeSubject(ctx context.Context, subject, scope, reason string, claims map[string]any) (Revocation, error) {
	body := map[string]any{"scope": scope, "reason": reason}
	if claims != nil {
		body["claims"] = claims
	}
	var r Revocation
	err := c.call(ctx, "POST", "/v1/subjects/"+pathSegment(subject)+"/revoke", body, &r)
	return r, err
}

// RevokeItem is one item of RevokeMany: a session (SessionID), or else a
// subject (Subject, with Scope "sessions" or "access", and Claims that,
// when non-nil, replace the claims of future tokens).
type RevokeItem struct {
	SessionID string         `json:"session_id,omitempty"`
	Subject   string         `json:"subject,omitempty"`
	Scope     string         `json:"scope,omitempty"`
	Claims    map[string]any `json:"claims,omitempty"`
}

// ItemOutcome is what RevokeMany did with one item: Revoked with the seq of
// its revocation log entry, or not (a session already revoked).
type ItemOutcome struct {
	Revoked bool  `json:"revoked"`
	Seq     int64 `json:"seq"`
}

// MaxRevokeItems is the most items one RevokeMany call may carry.
const MaxRevokeItems = 10_000

// RevokeMany revokes up to MaxRevokeItems sessions and subjects in one
// call, all or nothing: on an *Error nothing was revoked, and the
// description names the first bad item ("items[3]: ..."). Outcome i is
// item i's.
func (c *Client) RevokeMany(ctx context.Context, items []RevokeItem, reason string) ([]ItemOutcome, error) {
	var out struct {
		Items []ItemOutcome `json:"items"`
	}
	err := c.call(ctx, "POST", "/v1/revocations", map[string]any{"items": items, "reason": reason}, &out)
	if err == nil && len(out.Items) != len(items) {
		err = fmt.Errorf("authority answered %d outcomes for %d items", len(out.Items), len(items))
	}
	return out.Items, err
}

// Sessions lists a subject's live sessions.
func (c *Client) Sessions(ctx context.Context, subject string) ([]Session, error) {
	var out struct {
		Sessions []Session `json:"sessions"`
	}
	err := c.call(ctx, "GET", "/v1/subjects/"+pathSegment(subject)+"/sessions", nil, &out)
	return out.Sessions, err
}

// Introspect asks the authority about an access token (RFC 7662).
func (c *Client) Introspect(ctx context.Context, token string) (map[string]any, error) {
	var out map[string]any
	err := c.form(ctx, "/v1/introspect", token, &out)
	return out, err
}

// RevokeToken signs the token's session out (RFC 7009).
func (c *Client) RevokeToken(ctx context.Context, token string) error {
	return c.form(ctx, "/v1/token/revoke", token, nil)
}

// APIKey describes an API key. Key, the secret, is set only in the answer
// to CreateAPIKey: the authority keeps a hash and never shows it again.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"` // "admin" or "feed"
	CreatedAt time.Time `json:"created_at"`
	Key       string    `json:"key,omitempty"`
}

// CreateAPIKey makes a new API key with role "admin" or "feed"; reason
// (optional) goes to the audit trail.
func (c *Client) CreateAPIKey(ctx context.Context, name, role, reason string) (APIKey, error) {
	var k APIKey
	err := c.call(ctx, "POST", "/v1/apikeys", map[string]string{"name": name, "role": role, "reason": reason}, &k)
	return k, err
}

// APIKeys lists the live API keys, without secrets.
func (c *Client) APIKeys(ctx context.Context) ([]APIKey, error) {
	var out struct {
		Keys []APIKey `json:"keys"`
	}
	err := c.call(ctx, "GET", "/v1/apikeys", nil, &out)
	return out.Keys, err
}

// RevokeAPIKey revokes an API key by id.
func (c *Client) RevokeAPIKey(ctx context.Context, id, reason string) error {
	return c.call(ctx, "POST", "/v1/apikeys/"+pathSegment(id)+"/revoke", map[string]string{"reason": reason}, nil)
}

// pathSegment escapes s as one path segment. url.PathEscape leaves "." and
// ".." as they are, and HTTP routers resolve those as dot segments
// (/v1/subjects/../sessions is /v1/sessions), so a subject named "." or
// ".." could be signed in but never listed or revoked: their dots are
// percent-encoded, which routers decode after matching.
func pathSegment(s string) string {
	e := url.PathEscape(s)
	if e == "." || e == ".." {
		return strings.ReplaceAll(e, ".", "%2E")
	}
	return e
}

// Do calls any endpoint with a JSON body (nil for none) and decodes the
// JSON answer into out (nil to discard).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.call(ctx, method, path, body, out)
}

func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

func (c *Client) form(ctx context.Context, path, token string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(c.BaseURL, "/")+path,
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.send(req, out)
}

func (c *Client) send(req *http.Request, out any) error {
	if c.APIKey != "" {
		// The same rule as every secret tegata reads: a key from a file or
		// a Kubernetes secret ends in a newline.
		key, err := secret.Clean(c.APIKey)
		if err != nil {
			return fmt.Errorf("client: APIKey: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Code == "" {
			e.Code, e.Description = "http_error", strings.TrimSpace(string(b))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode %s answer: %w", req.URL.Path, err)
	}
	return nil
}
