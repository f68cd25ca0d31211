// Package client is the Go client of the tegata authority's HTTP API
// (docs/api.md): what an app backend calls to sign users in and out, what
// the tegata CLI calls to operate an authority, and a TokenSource for Go
// programs that hold a session themselves.
//
// # Signing users in
//
// An app backend authenticates the user (password, passkey, SSO...), then
// creates a session with an admin API key and hands the tokens to the
// user's client:
//
//	c := &client.Client{BaseURL: "https://auth.internal", APIKey: os.Getenv("TEGATA_API_KEY")}
//	t, err := c.CreateSession(ctx, client.SessionRequest{Subject: "alice", Device: "Firefox on laptop",
//		Claims: map[string]any{"roles": []string{"editor"}}})
//
// The client refreshes with Refresh (no API key needed: the refresh token is
// the credential); RevokeSession, RevokeSubject, RevokeMany and RevokeToken
// sign users out, at once, everywhere tokens are verified; Sessions lists a
// user's devices; Introspect asks the authority about a token (a service
// that verifies locally uses package verifier instead).
//
// # Holding a session
//
// A Go program that is itself signed in as a user (a command-line tool, a
// device) gets a current access token from a TokenSource, which refreshes it
// shortly before it expires and reports each new refresh token to store.
//
// # Operating an authority
//
// Keys and RotateKey manage signing keys, CreateAPIKey, APIKeys and
// RevokeAPIKey the API keys, Audit reads the audit trail; Discovery and
// KeySet fetch what the authority publishes. The tegata CLI is built on
// these.
//
// # Errors
//
// A refusal by the authority is an *Error carrying the HTTP status and the
// API's error code; test the code with errors.Is and the sentinels below
// (errors.Is(err, client.ErrInvalidGrant): the refresh token is spent,
// revoked or expired and the user must sign in again). Anything else (the
// network, a malformed answer) is returned as it came, wrapped with the
// endpoint.
//
// # Concurrency
//
// A Client holds nothing but its configuration and is safe for concurrent
// use; so is a TokenSource.
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

	"github.com/tegata-dev/tegata/internal/secret"
)

// Client calls one authority. The zero value is not usable: set BaseURL.
type Client struct {
	// BaseURL is the authority's base URL, e.g. "http://127.0.0.1:8080".
	BaseURL string
	// APIKey is sent as a bearer token. Each method names the roles that
	// may call it: an admin key may call every one; a gate key sessions,
	// their revocation and introspection; a feed key introspection.
	// Refresh and RevokeToken need none.
	APIKey string
	// HTTPClient makes the requests. Nil: http.DefaultClient.
	HTTPClient *http.Client
}

// maxAnswer caps what is read of an answer; the largest (a long audit page
// or session list) is far smaller.
const maxAnswer = 16 << 20

// Do calls an endpoint this package has no method for (a newer authority's):
// method and path (with its query), a JSON body (nil for none), and the JSON
// answer decoded into out (nil to discard). Errors are as for every method.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.call(ctx, method, path, body, out)
}

// call sends a JSON request (body nil: none) and decodes the answer.
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("client: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := c.request(ctx, method, path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

// form sends token as the form body RFC 7662 and RFC 7009 define.
func (c *Client) form(ctx context.Context, path, token string, out any) error {
	req, err := c.request(ctx, http.MethodPost, path, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.send(req, out)
}

func (c *Client) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// send makes the request and decodes a 2xx answer into out, or returns the
// error answer as an *Error.
func (c *Client) send(req *http.Request, out any) error {
	_, err := c.sendHeader(req, out)
	return err
}

// sendHeader is send that also returns the header of a 2xx answer.
func (c *Client) sendHeader(req *http.Request, out any) (http.Header, error) {
	if c.APIKey != "" {
		// The same rule as every secret tegata reads: a key from a file or
		// a Kubernetes secret ends in a newline.
		key, err := secret.Clean(c.APIKey)
		if err != nil {
			return nil, fmt.Errorf("client: APIKey: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: reading the answer: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode >= 300 {
		return nil, errorFrom(resp, b)
	}
	if out == nil {
		return resp.Header, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("client: %s %s: decoding the answer: %w", req.Method, req.URL.Path, err)
	}
	return resp.Header, nil
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
