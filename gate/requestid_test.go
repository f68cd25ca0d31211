package gate_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"sync"
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

// roundTripFunc is an http.RoundTripper made of a func.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestWebRequestIDReachesAuthority: the sign-in a web gate makes with the
// authority for a request carries that request's id.
func TestWebRequestIDReachesAuthority(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	e := startWeb(t, func(c *gate.WebConfig) {
		c.Authority.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/v1/sessions" && r.Method == http.MethodPost {
				mu.Lock()
				sent = append(sent, r.Header.Get("X-Request-Id"))
				mu.Unlock()
			}
			return http.DefaultTransport.RoundTrip(r)
		})}
	})
	got := e.browser(t).login("ann", nil)
	id := got.header.Get("X-Request-Id")
	mu.Lock()
	defer mu.Unlock()
	if id == "" || len(sent) != 1 || sent[0] != id {
		t.Errorf("the sign-in's answer has X-Request-Id %q; the session creation sent to the authority carried %q, want the same", id, sent)
	}
}
