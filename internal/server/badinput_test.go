package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/store"
)

// TestBadInput sends each client mistake and checks status, error code, a
// JSON body, and that nothing was recorded.
func TestBadInput(t *testing.T) {
	t.Parallel()
	badInput(t, start(t, nil))
}

// TestBadInputPostgres: Postgres refuses text SQLite stores (NUL, invalid
// UTF-8); such input must still be the client's 400, never a 500.
func TestBadInputPostgres(t *testing.T) {
	t.Parallel()
	dsn := migrated.Schema(t)
	badInput(t, start(t, func(c *server.Config) { c.DB = dsn }))
}

func badInput(t *testing.T, e *env) {
	good, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "ivy"})
	admin := "Bearer " + e.APIKey
	tests := []struct {
		name, method, path, ctype, auth, body string
		status                                int
		code                                  string
	}{
		{"malformed JSON", "POST", "/v1/sessions", "application/json", admin, `{"subject":`, 400, "invalid_request"},
		{"unknown field", "POST", "/v1/sessions", "application/json", admin, `{"subject":"x","admin":true}`, 400, "invalid_request"},
		{"wrong type", "POST", "/v1/sessions", "application/json", admin, `{"subject":42}`, 400, "invalid_request"},
		{"two objects", "POST", "/v1/sessions", "application/json", admin, `{"subject":"x"}{"subject":"y"}`, 400, "invalid_request"},
		{"empty body", "POST", "/v1/sessions", "application/json", admin, ``, 400, "invalid_request"},
		{"empty subject", "POST", "/v1/sessions", "application/json", admin, `{"subject":""}`, 400, "invalid_request"},
		{"control char subject", "POST", "/v1/sessions", "application/json", admin, `{"subject":"a\u0000b"}`, 400, "invalid_request"},
		{"subject with a trailing space", "POST", "/v1/sessions", "application/json", admin, `{"subject":"dept-2 "}`, 400, "invalid_request"},
		{"subject with a leading no-break space", "POST", "/v1/sessions", "application/json", admin, `{"subject":"\u00a0bob"}`, 400, "invalid_request"},
		{"revoking a subject with a trailing space", "POST", "/v1/subjects/dept-2%20/revoke", "application/json", admin, `{}`, 400, "invalid_request"},
		{"reserved claim", "POST", "/v1/sessions", "application/json", admin, `{"subject":"x","claims":{"sub":"root"}}`, 400, "invalid_request"},
		{"claims too big", "POST", "/v1/sessions", "application/json", admin, `{"subject":"x","claims":{"a":"` + strings.Repeat("x", 5000) + `"}}`, 400, "invalid_request"},
		{"oversized body", "POST", "/v1/sessions", "application/json", admin, `{"subject":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "invalid_request"},
		{"wrong content type", "POST", "/v1/sessions", "text/plain", admin, `{"subject":"x"}`, 415, "invalid_request"},
		{"missing API key", "POST", "/v1/sessions", "application/json", "", `{"subject":"x"}`, 401, "invalid_request"},
		{"wrong API key", "POST", "/v1/sessions", "application/json", "Bearer tgk_wrong", `{"subject":"x"}`, 401, "invalid_token"},
		{"basic auth", "POST", "/v1/sessions", "application/json", "Basic YTpi", `{"subject":"x"}`, 401, "invalid_request"},
		{"garbage refresh token", "POST", "/v1/token/refresh", "application/json", "", `{"refresh_token":"garbage"}`, 400, "invalid_grant"},
		{"unknown refresh token", "POST", "/v1/token/refresh", "application/json", "", `{"refresh_token":"` + strings.Repeat("A", 43) + `"}`, 400, "invalid_grant"},
		{"access token as refresh", "POST", "/v1/token/refresh", "application/json", "", `{"refresh_token":"` + good.AccessToken + `"}`, 400, "invalid_grant"},
		{"missing refresh token", "POST", "/v1/token/refresh", "application/json", "", `{}`, 400, "invalid_request"},
		{"bad scope", "POST", "/v1/subjects/ivy/revoke", "application/json", admin, `{"scope":"everything"}`, 400, "invalid_request"},
		{"unknown session", "POST", "/v1/sessions/nope/revoke", "application/json", admin, ``, 404, "not_found"},
		{"introspect as JSON", "POST", "/v1/introspect", "application/json", admin, `{"token":"x"}`, 415, "invalid_request"},
		{"introspect without token", "POST", "/v1/introspect", "application/x-www-form-urlencoded", admin, `foo=bar`, 400, "invalid_request"},
		{"no such endpoint", "GET", "/v1/nothing", "", "", ``, 404, "not_found"},
		{"bad audit cursor", "GET", "/v1/audit?after=-1", "", admin, ``, 400, "invalid_request"},
		{"NUL in device", "POST", "/v1/sessions", "application/json", admin, `{"subject":"x","device":"a\u0000b"}`, 400, "invalid_request"},
		{"invalid UTF-8 session id", "POST", "/v1/sessions/%FF/revoke", "", admin, ``, 400, "invalid_request"},
		{"NUL in session id", "POST", "/v1/sessions/a%00b/revoke", "", admin, ``, 400, "invalid_request"},
		{"NUL in reason", "POST", "/v1/sessions/" + good.SessionID + "/revoke", "application/json", admin, `{"reason":"a\u0000b"}`, 400, "invalid_request"},
		{"NUL in subject revocation reason", "POST", "/v1/subjects/ivy/revoke", "application/json", admin, `{"reason":"\u0000"}`, 400, "invalid_request"},
		{"NUL in rotation reason", "POST", "/v1/keys/rotate", "application/json", admin, `{"reason":"\u0000"}`, 400, "invalid_request"},
	}
	headBefore, _ := e.Store.Head(ctx(t))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.URL+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var body struct{ Error, ErrorDescription string }
			var raw map[string]string
			_ = json.Unmarshal(b, &raw)
			body.Error, body.ErrorDescription = raw["error"], raw["error_description"]
			if resp.StatusCode != tc.status || body.Error != tc.code || body.ErrorDescription == "" {
				t.Fatalf("%s %s = %d %s, want %d with error %q and a description", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.code)
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("Content-Type = %q, want application/json", resp.Header.Get("Content-Type"))
			}
			// A refused credential gets the one challenge format (RFC 6750,
			// with the realm); a missing one names no error (§3.1).
			wantChallenge := map[string]string{
				"invalid_request": `Bearer realm="tegata"`,
				"invalid_token":   `Bearer realm="tegata", error="invalid_token", error_description="invalid API key"`,
			}[tc.code]
			if got := resp.Header.Get("WWW-Authenticate"); tc.status == 401 && got != wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, wantChallenge)
			}
		})
	}
	if head, _ := e.Store.Head(ctx(t)); head != headBefore {
		t.Fatalf("log head moved from %d to %d: a refused request changed state", headBefore, head)
	}
	if list, _ := e.admin.Sessions(ctx(t), "x"); len(list) != 0 {
		t.Fatalf("a refused request created %d sessions", len(list))
	}
	if !active(t, e, good.AccessToken) {
		t.Fatal("a refused request affected an unrelated session")
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	send := func(path, ctype, auth, body string) (*http.Response, error) {
		req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return resp, nil
	}
	post := func(path, ctype, auth, body string) *http.Response {
		resp, err := send(path, ctype, auth, body)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// limited sends a flood of n requests, 8 at a time: the buckets refill
	// on the node's running clock, so the requests must arrive faster than
	// the refill rate however slowly the node serves them (the race
	// detector makes a session creation take ~200 ms, the per-subject
	// refill interval).
	limited := func(name string, n int, path, ctype, auth, body string) {
		t.Run(name, func(t *testing.T) {
			var (
				mu       sync.Mutex
				statuses = map[int]int{}
				noRetry  int
				errs     []error
				wg       sync.WaitGroup
				next     atomic.Int32
			)
			for range 8 {
				wg.Go(func() {
					for next.Add(1) <= int32(n) {
						resp, err := send(path, ctype, auth, body)
						mu.Lock()
						switch {
						case err != nil:
							errs = append(errs, err)
						default:
							statuses[resp.StatusCode]++
							if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
								noRetry++
							}
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(errs) > 0 {
				t.Fatal(errs[0])
			}
			if statuses[http.StatusTooManyRequests] == 0 {
				t.Fatalf("%d requests, none limited (statuses %v)", n, statuses)
			}
			if noRetry > 0 {
				t.Fatalf("%d answers 429 without Retry-After", noRetry)
			}
		})
	}
	limited("per subject", 60, "/v1/sessions", "application/json", "Bearer "+e.APIKey, `{"subject":"flood"}`)
	limited("per client address on refresh", 200, "/v1/token/refresh", "application/json", "", `{"refresh_token":"garbage"}`)
	limited("failed API key attempts per address", 30, "/v1/sessions", "application/json", "Bearer tgk_guess", `{"subject":"x"}`)
	// A web gate refreshes for all its browsers from one address: with its
	// API key it is limited per key, so the address's flood above does
	// not stop it.
	gateKey, err := e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "web", Role: client.RoleGate})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		resp := post("/v1/token/refresh", "application/json", "Bearer "+gateKey.Key, `{"refresh_token":"garbage"}`)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("refresh %d with a gate key from a limited address = %d, want 400 (refused token, not limited)", i, resp.StatusCode)
		}
	}
	// Another subject is not affected by the flood.
	if _, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "calm"}); err != nil {
		t.Fatalf("CreateSession(other subject) = %v, want success", err)
	}
}

// TestRequestJSONDuplicatesAndCaseVariants: request decoding is strict
// (docs/security.md): a duplicate member or a case variant of a field name
// is refused, where encoding/json alone would match names
// case-insensitively and let the last win, so that
// {"subject":"alice","SUBJECT":"root"} would create a session for root.
func TestRequestJSONDuplicatesAndCaseVariants(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	refused := []struct{ name, path, body string }{
		{"case variant after the field", "/v1/sessions", `{"subject":"alice","SUBJECT":"root"}`},
		{"case variant alone", "/v1/sessions", `{"Subject":"root"}`},
		{"duplicate field", "/v1/sessions", `{"subject":"alice","subject":"root"}`},
		{"duplicate claim", "/v1/sessions", `{"subject":"alice","claims":{"role":"user","role":"admin"}}`},
		{"duplicate deep in a claim", "/v1/sessions", `{"subject":"alice","claims":{"org":{"id":1,"id":2}}}`},
		{"case variant of scope", "/v1/subjects/alice/revoke", `{"scope":"access","Scope":"sessions"}`},
		{"duplicate refresh token", "/v1/token/refresh", `{"refresh_token":"a","refresh_token":"b"}`},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postJSON(t, e, tc.path, tc.body)
			if status != http.StatusBadRequest || !strings.Contains(body, "invalid_request") {
				t.Errorf("POST %s %s = %d %s, want 400 invalid_request", tc.path, tc.body, status, body)
			}
		})
	}
	for _, sub := range []string{"root", "alice"} {
		if list, err := e.admin.Sessions(ctx(t), sub); err != nil || len(list) != 0 {
			t.Errorf("Sessions(%q) = %d, %v; want none: a refused request created a session", sub, len(list), err)
		}
	}
	// Claim names are the app's and case-sensitive: both are kept.
	status, body := postJSON(t, e, "/v1/sessions", `{"subject":"alice","claims":{"role":"user","Role":"admin"}}`)
	if status != http.StatusCreated {
		t.Fatalf("POST /v1/sessions with claims role and Role = %d %s, want 201", status, body)
	}
}

func postJSON(t *testing.T, e *env, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRevocationsNotStarvedBySessionCreation: revocations have rate limit
// buckets of their own, per subject and per key, so an app signing a user
// in a few dozen times a second cannot make an operator's "sign out
// everywhere" fail with 429.
func TestRevocationsNotStarvedBySessionCreation(t *testing.T) {
	t.Parallel()
	limits := httpapi.DefaultLimits()
	limits.PerKey = httpapi.Limit{Rate: 1, Burst: 8}
	limits.PerSubject = httpapi.Limit{Rate: 1, Burst: 4}
	limits.PerClient = httpapi.Limit{Rate: 1, Burst: 4}
	e := start(t, func(c *server.Config) { c.Limits = &limits })
	var tok client.Tokens
	for i := 0; ; i++ {
		status, body := postJSON(t, e, "/v1/sessions", `{"subject":"busy"}`)
		if status == http.StatusTooManyRequests {
			break
		}
		if status != http.StatusCreated || i > 20 {
			t.Fatalf("POST /v1/sessions #%d = %d %s, want 201 until 429", i, status, body)
		}
		if err := json.Unmarshal([]byte(body), &tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID, Reason: "incident"}); err != nil {
		t.Errorf("RevokeSession while creations are limited = %v, want success", err)
	}
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "busy", Scope: "sessions", Reason: "incident"}); err != nil {
		t.Errorf("RevokeSubject while creations are limited = %v, want success", err)
	}
	if _, err := e.admin.RevokeMany(ctx(t), client.BulkRevocation{Items: []client.RevokeItem{{Subject: "busy"}}, Reason: "incident"}); err != nil {
		t.Errorf("RevokeMany while creations are limited = %v, want success", err)
	}
	// The public endpoints: refresh load from one address does not hold
	// up a client's sign-out from that address.
	for i := 0; ; i++ {
		if status, _ := postJSON(t, e, "/v1/token/refresh", `{"refresh_token":"garbage"}`); status == http.StatusTooManyRequests {
			break
		} else if i > 20 {
			t.Fatal("refresh never limited")
		}
	}
	if _, err := e.anon.RevokeToken(ctx(t), client.TokenRevocation{Token: "garbage"}); err != nil {
		t.Errorf("RevokeToken while refreshes are limited = %v, want success", err)
	}
}

// nestedClaim is a claims object whose value nests depth arrays deep.
func nestedClaim(depth int) string {
	return `{"deep":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
}

// TestUnsignableClaimsRefusedAtInput: claims nested deeper than the token
// parser accepts are refused with 400 where they come in (POST
// /v1/sessions, a scope=access revocation), before anything is stored.
// Should such claims be in the store anyway, a refresh fails without
// spending the refresh token, so the client's retry is not taken for theft
// and works once the claims are fixed.
func TestUnsignableClaimsRefusedAtInput(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	if status, body := postJSON(t, e, "/v1/sessions", `{"subject":"judy","claims":`+nestedClaim(40)+`}`); status != http.StatusBadRequest {
		t.Errorf("POST /v1/sessions with claims nested 40 deep = %d %s, want 400", status, body)
	}
	if list, _ := e.admin.Sessions(ctx(t), "judy"); len(list) != 0 {
		t.Errorf("a refused sign-in stored %d sessions", len(list))
	}
	// The deepest claims a token can carry are accepted.
	ok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "judy", Claims: map[string]any{"deep": nested(31)}})
	if err != nil {
		t.Fatalf("CreateSession(claims at the depth limit) = %v, want success", err)
	}
	if status, body := postJSON(t, e, "/v1/subjects/judy/revoke", `{"scope":"access","claims":`+nestedClaim(40)+`}`); status != http.StatusBadRequest {
		t.Errorf("POST /v1/subjects/judy/revoke with claims nested 40 deep = %d %s, want 400", status, body)
	}
	next, err := e.anon.Refresh(ctx(t), ok.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh after the refused revocation = %v, want success", err)
	}

	// Unsignable claims written to the store directly: the refresh fails
	// without spending the token, and works once the claims are fixed.
	bad := json.RawMessage(nestedClaim(40))
	if _, err := e.Store.RevokeSubject(ctx(t), store.SubjectRevocation{Subject: "judy", Claims: bad,
		Now: e.clock.Now(), ExpiresAt: e.clock.Now().Add(time.Hour), Actor: store.Actor{By: "test"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.anon.Refresh(ctx(t), next.RefreshToken); err == nil {
		t.Fatal("Refresh with unsignable stored claims = success, want an error")
	}
	if _, err := e.admin.RevokeSubject(ctx(t), client.SubjectRevocation{Subject: "judy", Scope: "access", Reason: "fix claims", Claims: map[string]any{"role": "user"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.anon.Refresh(ctx(t), next.RefreshToken); err != nil {
		t.Errorf("Refresh with the same token once the claims are fixed = %v, want success (not theft)", err)
	}
}

// nested returns depth arrays nested in one another.
func nested(depth int) any {
	var v any = []any{}
	for range depth - 1 {
		v = []any{v}
	}
	return v
}

// TestAPIKeyRevocationNotARevocationBucket: the revocation buckets were
// chosen by a route's pattern ending in /revoke, so revoking API keys
// (POST /v1/apikeys/{id}/revoke) drew on them, and a script retiring keys
// could make an operator's "sign out everywhere" wait. Routes are marked
// as revocations where they are registered.
func TestAPIKeyRevocationNotARevocationBucket(t *testing.T) {
	t.Parallel()
	limits := httpapi.DefaultLimits()
	limits.PerKey = httpapi.Limit{Rate: 0.001, Burst: 4}
	e := start(t, func(c *server.Config) { c.Limits = &limits })
	tok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "frank"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		status, body := postJSON(t, e, "/v1/apikeys/nope/revoke", `{}`)
		if status == http.StatusTooManyRequests {
			break
		}
		if status != http.StatusNotFound || i > 10 {
			t.Fatalf("POST /v1/apikeys/nope/revoke #%d = %d %s, want 404 until 429", i, status, body)
		}
	}
	if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID, Reason: "incident"}); err != nil {
		t.Errorf("RevokeSession after API key revocations used up the key's budget = %v, want success", err)
	}
	if _, err := e.admin.APIKeys(ctx(t)); err == nil {
		t.Errorf("APIKeys() after the key's budget was used up = nil error, want 429: API key revocations share the other calls' bucket")
	}
}
