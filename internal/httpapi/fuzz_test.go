package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
)

// fuzzServer is a real authority on SQLite behind the real handler.
func fuzzServer(f *testing.F) (http.Handler, string) {
	f.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, f.TempDir()+"/fuzz.db")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	a, err := authority.New(ctx, st, bytes.Repeat([]byte{3}, authority.MasterKeySize), authority.Config{Issuer: "https://fuzz.test"})
	if err != nil {
		f.Fatal(err)
	}
	key := authority.NewAPIKey()
	if err := a.EnsureAPIKey(ctx, "fuzz", key, authority.RoleAdmin, false); err != nil {
		f.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return httpapi.New(a, httpapi.Config{Logger: quiet}), key
}

// FuzzRequestBodies sends arbitrary bodies to every endpoint that decodes
// one. The authority must answer a client mistake with a 4xx and the JSON
// error shape, never a 5xx or a panic.
func FuzzRequestBodies(f *testing.F) {
	h, key := fuzzServer(f)
	seeds := []struct {
		route uint8
		body  string
	}{
		{0, `{"subject":"alice","device":"d","claims":{"roles":["a"]}}`},
		{0, `{"subject":"a","claims":{"sub":"x"}}`},
		{0, `{"subject":"\u0000"}`},
		{1, `{"refresh_token":"AAAA"}`},
		{2, `{"scope":"access","claims":{"r":1},"reason":"x"}`},
		{2, `{"claims":null}`},
		{3, `token=abc&token=def`},
		{4, `token=%zz`},
		{5, `{"reason":"` + string(bytes.Repeat([]byte("r"), 600)) + `"}`},
		{0, `[]`}, {0, `null`}, {0, `{"subject":"a"} x`}, {1, ``},
		{6, `{"name":"ci-bot","role":"feed"}`}, {6, `{"name":"../x","role":"root"}`},
	}
	for _, s := range seeds {
		f.Add(s.route, []byte(s.body))
	}
	routes := []struct{ path, ctype string }{
		{"/v1/sessions", "application/json"},
		{"/v1/token/refresh", "application/json"},
		{"/v1/subjects/fuzz/revoke", "application/json"},
		{"/v1/introspect", "application/x-www-form-urlencoded"},
		{"/v1/token/revoke", "application/x-www-form-urlencoded"},
		{"/v1/keys/rotate", "application/json"},
		{"/v1/apikeys", "application/json"},
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		req := httptest.NewRequest("POST", rt.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", rt.ctype)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q = %d %s, want no 5xx", rt.path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var e map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == "" || e["error_description"] == "" {
				t.Fatalf("POST %s %q = %d %s, want the JSON error shape", rt.path, body, rec.Code, rec.Body)
			}
		}
	})
}
