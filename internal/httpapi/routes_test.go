package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
)

// TestRoutePolicy: who may call each route, as docs/api.md states it,
// checked over a real HTTP server with a real authority on SQLite: without
// a key a keyed route answers 401, a key of a role without access 403, and
// a key of a role with access gets past authentication (whatever the
// handler then says of the empty request). Public routes never ask.
func TestRoutePolicy(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := authority.New(ctx, st, bytes.Repeat([]byte{5}, authority.MasterKeySize), authority.Config{Issuer: "https://auth.test"})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, role := range []string{authority.RoleAdmin, authority.RoleFeed, authority.RoleGate} {
		keys[role] = authority.NewAPIKey()
		if err := a.EnsureAPIKey(ctx, role+"-key", keys[role], role, false); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(httpapi.New(a, httpapi.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	defer srv.Close()

	const (
		admin = authority.RoleAdmin
		feed  = authority.RoleFeed
		gate  = authority.RoleGate
	)
	tests := []struct {
		method, path string
		roles        []string // nil: public
		keyOptional  bool     // public without a key, keyed with one
	}{
		{"POST", "/v1/sessions", []string{admin, gate}, false},
		{"POST", "/v1/sessions/no-such-session/revoke", []string{admin, gate}, false},
		{"POST", "/v1/subjects/alice/revoke", []string{admin, gate}, false},
		{"POST", "/v1/revocations", []string{admin}, false},
		{"GET", "/v1/subjects/alice/sessions", []string{admin, gate}, false},
		{"POST", "/v1/introspect", []string{admin, feed, gate}, false},
		{"GET", "/v1/keys", []string{admin}, false},
		{"POST", "/v1/keys/rotate", []string{admin}, false},
		{"GET", "/v1/audit", []string{admin}, false},
		{"POST", "/v1/apikeys", []string{admin}, false},
		{"GET", "/v1/apikeys", []string{admin}, false},
		{"POST", "/v1/apikeys/no-such-key/revoke", []string{admin}, false},
		{"GET", "/v1/verifiers", []string{admin, gate}, false},
		{"POST", "/v1/token/refresh", []string{admin, gate}, true},
		{"POST", "/v1/token/revoke", nil, false},
		{"GET", "/.well-known/jwks.json", nil, false},
		{"GET", "/.well-known/openid-configuration", nil, false},
		{"GET", "/healthz", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			noKey := do(t, tt.method, srv.URL+tt.path, "")
			switch {
			case tt.roles != nil && !tt.keyOptional && noKey != http.StatusUnauthorized:
				t.Errorf("without a key: %d, want 401", noKey)
			case (tt.roles == nil || tt.keyOptional) && (noKey == http.StatusUnauthorized || noKey == http.StatusForbidden):
				t.Errorf("without a key: %d, want the route to answer (it is public without one)", noKey)
			}
			for _, role := range []string{admin, feed, gate} {
				got := do(t, tt.method, srv.URL+tt.path, keys[role])
				allowed := tt.roles == nil
				for _, r := range tt.roles {
					allowed = allowed || r == role
				}
				switch {
				case allowed && (got == http.StatusUnauthorized || got == http.StatusForbidden):
					t.Errorf("with a %s key: %d, want the route to accept the key", role, got)
				case !allowed && got != http.StatusForbidden:
					t.Errorf("with a %s key: %d, want 403", role, got)
				}
			}
		})
	}
	if got := do(t, "GET", srv.URL+"/v1/keys", "not-a-key"); got != http.StatusUnauthorized {
		t.Errorf("GET /v1/keys with an unknown key = %d, want 401", got)
	}
}

// do sends a request with an empty body and returns the status.
func do(t *testing.T, method, url, key string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}
