package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an error answer from the authority: the HTTP status and the
// API's {"error", "error_description"}. It matches the sentinel of its code
// under errors.Is.
type Error struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
	// RetryAfter is the wait the answer asked for (Retry-After, in seconds
	// or as an HTTP-date), as it came: a proxy in front of the authority
	// may ask for hours, so cap it before sleeping on it. Zero when none.
	RetryAfter time.Duration `json:"-"`
	// DPoPNonce is the nonce the authority asked DPoP proofs to carry
	// (DPoP-Nonce) with use_dpop_nonce; "" otherwise.
	DPoPNonce string `json:"-"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("authority answered %d %s: %s", e.Status, e.Code, e.Description)
}

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Code]
	return ok && s == target
}

// Sentinels of the API's error codes (docs/api.md), for errors.Is.
var (
	// ErrInvalidRequest: the request is malformed (invalid_request), or
	// carried no API key where one is needed.
	ErrInvalidRequest = errors.New("client: invalid_request")
	// ErrInvalidGrant: the refresh token is unknown, spent, expired or its
	// session revoked (invalid_grant): sign the user in again.
	ErrInvalidGrant = errors.New("client: invalid_grant")
	// ErrInvalidToken: the API key is wrong or revoked (invalid_token).
	ErrInvalidToken = errors.New("client: invalid_token")
	// ErrInsufficientScope: the API key's role may not call this endpoint
	// (insufficient_scope), e.g. a feed key creating sessions.
	ErrInsufficientScope = errors.New("client: insufficient_scope")
	// ErrNotFound: no such session, API key or endpoint (not_found).
	ErrNotFound = errors.New("client: not_found")
	// ErrConflict: the change conflicts with the authority's state
	// (conflict), e.g. revoking the last admin API key.
	ErrConflict = errors.New("client: conflict")
	// ErrRateLimited: too many requests (rate_limited); see
	// Error.RetryAfter.
	ErrRateLimited = errors.New("client: rate_limited")
	// ErrUnavailable: this authority node cannot answer now
	// (temporarily_unavailable), e.g. it cannot read its store; another
	// node may. See Error.RetryAfter.
	ErrUnavailable = errors.New("client: temporarily_unavailable")
	// ErrUseDBSCChallenge: the session is bound to a browser's DBSC key
	// and the refresh brought no proof, or one over no current challenge
	// (use_dbsc_challenge): nothing was spent; ask the browser to sign a
	// fresh challenge.
	ErrUseDBSCChallenge = errors.New("client: use_dbsc_challenge")
	// ErrUseDPoPNonce: the authority requires a server nonce in DPoP
	// proofs (use_dpop_nonce, RFC 9449 §8); Error.DPoPNonce holds it. A
	// TokenSource signs its retry with it by itself.
	ErrUseDPoPNonce = errors.New("client: use_dpop_nonce")
	// ErrServer: the authority failed (server_error, or an answer that was
	// not the API's JSON error).
	ErrServer = errors.New("client: server_error")
)

var sentinels = map[string]error{
	"invalid_request":         ErrInvalidRequest,
	"invalid_grant":           ErrInvalidGrant,
	"invalid_token":           ErrInvalidToken,
	"insufficient_scope":      ErrInsufficientScope,
	"not_found":               ErrNotFound,
	"conflict":                ErrConflict,
	"rate_limited":            ErrRateLimited,
	"temporarily_unavailable": ErrUnavailable,
	"server_error":            ErrServer,
	"use_dbsc_challenge":      ErrUseDBSCChallenge,
	"use_dpop_nonce":          ErrUseDPoPNonce,
}

// errorFrom builds the *Error of a non-2xx answer. An answer that is not
// the API's JSON (a proxy's error page) keeps its text, trimmed, as the
// description; a 5xx of that kind counts as server_error.
func errorFrom(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(body, e) != nil || e.Code == "" {
		e.Code, e.Description = "http_error", strings.TrimSpace(string(body))
		if resp.StatusCode >= 500 {
			e.Code = "server_error"
		}
		if len(e.Description) > 200 {
			e.Description = e.Description[:200] + "..."
		}
	}
	e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	if e.Code == "use_dpop_nonce" {
		e.DPoPNonce = resp.Header.Get("DPoP-Nonce")
	}
	return e
}

// retryAfter reads a Retry-After value (RFC 9110 §10.2.3): whole seconds,
// saturated at the longest time.Duration rather than wrapped, or an
// HTTP-date, as the wait from now until then. Anything else, or a wait
// that is not positive, is zero.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if s <= 0 {
			return 0
		}
		if s > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
