package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/server"
)

// TestBadInput sends each client mistake and checks status, error code, a
// JSON body, and that nothing was recorded.
func TestBadInput(t *testing.T) { badInput(t, start(t, nil)) }

// TestBadInputPostgres: Postgres refuses text SQLite stores (NUL, invalid
// UTF-8); such input must still be the client's 400, never a 500.
func TestBadInputPostgres(t *testing.T) {
	dsn := pgtest.Schema(t)
	badInput(t, start(t, func(c *server.Config) { c.DB = dsn }))
}

func badInput(t *testing.T, e *env) {
	good, _ := e.admin.CreateSession(ctx(t), "ivy", "", nil)
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
	e := start(t, nil)
	post := func(path, ctype, auth, body string) *http.Response {
		req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	limited := func(name string, send func() *http.Response, n int) {
		t.Run(name, func(t *testing.T) {
			for i := range n {
				resp := send()
				if resp.StatusCode == http.StatusTooManyRequests {
					if resp.Header.Get("Retry-After") == "" {
						t.Fatal("429 without Retry-After")
					}
					return
				}
				if i == n-1 {
					t.Fatalf("%d requests, none limited (last status %d)", n, resp.StatusCode)
				}
			}
		})
	}
	limited("per subject", func() *http.Response {
		return post("/v1/sessions", "application/json", "Bearer "+e.APIKey, `{"subject":"flood"}`)
	}, 60)
	limited("per client address on refresh", func() *http.Response {
		return post("/v1/token/refresh", "application/json", "", `{"refresh_token":"garbage"}`)
	}, 200)
	limited("failed API key attempts per address", func() *http.Response {
		return post("/v1/sessions", "application/json", "Bearer tgk_guess", `{"subject":"x"}`)
	}, 30)
	// A web gate refreshes for all its browsers from one address: with its
	// API key it is limited per key, so the address's flood above does
	// not stop it.
	gateKey, err := e.admin.CreateAPIKey(ctx(t), "web", authority.RoleGate, "")
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
	if _, err := e.admin.CreateSession(ctx(t), "calm", "", nil); err != nil {
		t.Fatalf("CreateSession(other subject) = %v, want success", err)
	}
}
