package gate_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/gate"
)

// TestRequestIDs: every answer of the gate carries X-Request-Id, the same
// id reaches the upstream and the gate's log line about the request; an id
// sent by a trusted proxy is kept, one sent by anyone else is replaced.
func TestRequestIDs(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	waitReady(t, v)
	tok := a.signIn(t, "alice", nil)
	up := startEcho(t)
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		kept    bool
	}{
		{"from a trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, true},
		{"from anyone else", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			proxy := startGate(t, v, gate.Config{Upstream: up.url(t), TrustedProxies: tc.trusted, Logger: logs.logger()})
			h := bearer(tok.AccessToken)
			h.Set("X-Request-Id", "lb-1234")
			got := do(t, "GET", proxy.URL+"/x", h)
			id := got.header.Get("X-Request-Id")
			if got.status != http.StatusOK || id == "" || (id == "lb-1234") != tc.kept {
				t.Fatalf("GET through the gate = %d, X-Request-Id %q; want 200, the proxy's id kept: %v", got.status, id, tc.kept)
			}
			var e struct{ Header http.Header }
			if err := json.Unmarshal(got.body, &e); err != nil {
				t.Fatal(err)
			}
			if ups := e.Header.Values("X-Request-Id"); len(ups) != 1 || ups[0] != id {
				t.Errorf("the upstream got X-Request-Id %q, want [%q]", ups, id)
			}
			if vals := got.header.Values("X-Request-Id"); len(vals) != 1 {
				t.Errorf("the answer carries X-Request-Id %q, want it once", vals)
			}

			forward := startGate(t, v, gate.Config{TrustedProxies: tc.trusted, Logger: logs.logger()})
			h = bearer(tok.AccessToken + "x")
			h.Set("X-Request-Id", "lb-5678")
			refused := do(t, "GET", forward.URL+"/auth", h)
			id = refused.header.Get("X-Request-Id")
			if refused.status != http.StatusUnauthorized || id == "" || (id == "lb-5678") != tc.kept {
				t.Fatalf("GET /auth with a bad token = %d, X-Request-Id %q; want 401, the proxy's id kept: %v", refused.status, id, tc.kept)
			}
			if !strings.Contains(logs.String(), "request_id="+id) {
				t.Errorf("the gate's log does not carry request_id=%s:\n%s", id, logs.String())
			}
		})
	}
}
