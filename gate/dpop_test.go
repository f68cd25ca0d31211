package gate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/token"
	"github.com/tegata-dev/tegata/verifier/verifiertest"
)

type dpopClient struct {
	key *ecdsa.PrivateKey
	jkt string
}

func newDPoPClient(t *testing.T) dpopClient {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := client.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return dpopClient{key: k, jkt: jkt}
}

func (c dpopClient) proof(t *testing.T, method, url, tok string, now time.Time) string {
	t.Helper()
	p, err := dpop.NewProof(c.key, method, url, tok, "", now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func boundToken(a *verifiertest.Authority, jkt string) string {
	now := a.Now()
	return a.Mint(token.Claims{Issuer: "https://tegata.test", Subject: "alice", Audience: []string{"tegata"},
		IssuedAt: now, Expiry: now.Add(10 * time.Minute), ID: "j-" + jkt[:8], SessionID: "s-" + jkt[:8], JKT: jkt})
}

// TestForwardAuthDPoP checks proofs against the original request as
// nginx, Traefik and Envoy describe it to a forward-auth gate.
func TestForwardAuthDPoP(t *testing.T) {
	a := verifiertest.New(verifiertest.Config{})
	g := startGate(t, a.Verifier(), gate.Config{TrustedProxies: loopback})
	c := newDPoPClient(t)
	tok := boundToken(a, c.jkt)
	const app = "https://app.example/orders/7"
	headers := map[string]http.Header{
		"nginx": {"X-Original-Method": {"DELETE"}, "X-Original-Uri": {"/orders/7?x=1"},
			"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example"}},
		"Traefik": {"X-Forwarded-Method": {"DELETE"}, "X-Forwarded-Uri": {"/orders/7"},
			"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example"}},
	}
	for proxy, h := range headers {
		t.Run(proxy, func(t *testing.T) {
			send := func(proof string) answer {
				hdr := h.Clone()
				hdr.Set("Authorization", "DPoP "+tok)
				if proof != "" {
					hdr.Set("DPoP", proof)
				}
				return do(t, "GET", g.URL+gate.PathAuth, hdr)
			}
			good := c.proof(t, "DELETE", app, tok, a.Now())
			if got := send(good); got.status != 200 {
				t.Fatalf("forward-auth with a proof for %s = %d %s, want 200", app, got.status, got.body)
			}
			for name, proof := range map[string]string{
				"replayed proof":       good,
				"no proof":             "",
				"proof for GET":        c.proof(t, "GET", app, tok, a.Now()),
				"proof for another":    c.proof(t, "DELETE", "https://app.example/orders/8", tok, a.Now()),
				"proof of another key": newDPoPClient(t).proof(t, "DELETE", app, tok, a.Now()),
			} {
				got := send(proof)
				if got.status != 401 || !strings.Contains(got.header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
					t.Errorf("forward-auth, %s = %d %q, want 401 invalid_dpop_proof", name, got.status, got.header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	t.Run("Envoy", func(t *testing.T) {
		// ext_authz (HTTP service, path_prefix /auth) sends the original
		// method, path and Host.
		req, _ := http.NewRequest("DELETE", g.URL+gate.PathAuth+"/orders/7", nil)
		req.Host = "app.example"
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", c.proof(t, "DELETE", app, tok, a.Now()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("Envoy-style check = %d, want 200", resp.StatusCode)
		}
	})
	t.Run("bound token as Bearer", func(t *testing.T) {
		if got := do(t, "GET", g.URL+gate.PathAuth, bearer(tok)); got.status != 401 ||
			!strings.HasPrefix(got.header.Get("WWW-Authenticate"), "DPoP ") {
			t.Errorf("bound token as Bearer = %d %q, want 401 with a DPoP challenge", got.status, got.header.Get("WWW-Authenticate"))
		}
	})
}

// TestProxyDPoP checks proofs in proxy mode against PublicURL.
func TestProxyDPoP(t *testing.T) {
	a := verifiertest.New(verifiertest.Config{})
	e := startEcho(t)
	g := startGate(t, a.Verifier(), gate.Config{Upstream: e.url(t), PublicURL: "https://app.example"})
	c := newDPoPClient(t)
	tok := boundToken(a, c.jkt)
	hdr := http.Header{"Authorization": {"DPoP " + tok}, "Dpop": {c.proof(t, "GET", "https://app.example/orders", tok, a.Now())}}
	if got := do(t, "GET", g.URL+"/orders?page=2", hdr); got.status != 200 || e.hits.Load() != 1 {
		t.Fatalf("proxied DPoP request = %d %s, want 200 from the upstream", got.status, got.body)
	}
	hdr.Set("DPoP", c.proof(t, "GET", g.URL+"/orders", tok, a.Now()))
	if got := do(t, "GET", g.URL+"/orders", hdr); got.status != 401 || e.hits.Load() != 1 {
		t.Errorf("proof for the gate's own address (not PublicURL) = %d, want 401 and no upstream call", got.status)
	}
	if _, err := gate.New(a.Verifier(), gate.Config{PublicURL: "ftp://x"}); err == nil {
		t.Errorf("gate.New(PublicURL ftp://x) = nil error, want one naming PublicURL")
	}
}

// TestProxyDPoPCookie: a DPoP request whose token cookie carries another
// token is refused, as a Bearer one is: cookies reach the upstream, which
// must never receive a token the gate did not check.
func TestProxyDPoPCookie(t *testing.T) {
	a := verifiertest.New(verifiertest.Config{})
	e := startEcho(t)
	g := startGate(t, a.Verifier(), gate.Config{Upstream: e.url(t), PublicURL: "https://app.example"})
	c := newDPoPClient(t)
	tok := boundToken(a, c.jkt)
	send := func(cookie string) answer {
		hdr := http.Header{"Authorization": {"DPoP " + tok}, "Dpop": {c.proof(t, "GET", "https://app.example/orders", tok, a.Now())}}
		if cookie != "" {
			hdr.Set("Cookie", cookie)
		}
		return do(t, "GET", g.URL+"/orders", hdr)
	}
	if got := send(gate.DefaultCookie + "=not.the.token"); got.status != 401 || e.hits.Load() != 0 {
		t.Fatalf("DPoP request with another token in the cookie = %d %s, want 401 and no upstream call", got.status, got.body)
	}
	if got := send(gate.DefaultCookie + "=a; " + gate.DefaultCookie + "=b"); got.status != 401 || e.hits.Load() != 0 {
		t.Fatalf("DPoP request with two token cookies = %d %s, want 401 and no upstream call", got.status, got.body)
	}
	if got := send("other=1; " + gate.DefaultCookie + "=" + tok); got.status != 200 || e.hits.Load() != 1 {
		t.Fatalf("DPoP request with the same token in the cookie = %d %s, want 200", got.status, got.body)
	}
	if got := send("other=1"); got.status != 200 || e.hits.Load() != 2 {
		t.Fatalf("DPoP request with unrelated cookies = %d %s, want 200", got.status, got.body)
	}
}

// TestWebSocketDPoP: a WebSocket opened with a DPoP-bound token stays open
// while its token is good (the tunnel's re-checks do not take it for a
// bound token presented as Bearer) and closes once it is revoked.
func TestWebSocketDPoP(t *testing.T) {
	a := verifiertest.New(verifiertest.Config{})
	g := startGate(t, a.Verifier(), gate.Config{Upstream: parseURL(t, wsApp(t).URL), PublicURL: "https://app.example"})
	c := newDPoPClient(t)
	tok := boundToken(a, c.jkt)
	hdr := http.Header{"Authorization": {"DPoP " + tok}, "Dpop": {c.proof(t, "GET", "https://app.example/chat", tok, a.Now())}}
	ws, status := wsDial(t, g.URL, "/chat", hdr)
	if ws == nil {
		t.Fatalf("DPoP WebSocket handshake = %d, want 101", status)
	}
	// Another subject's revocation makes the gate re-check every tunnel.
	a.Advance(time.Second)
	a.RevokeSubject("bob")
	for i := range 3 {
		if got := ws.echo(t, "hi"); got != "alice: hi" {
			t.Fatalf("echo %d = %q, want the DPoP WebSocket open", i, got)
		}
	}
	a.RevokeSubject("alice")
	ws.waitClosed(t, "alice was signed out everywhere")
}

// loopback trusts the test's own requests as a proxy's.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// TestDPoPForgedHost: a proof captured for service A, replayed once at a
// gate for service B with A's name in Host or X-Forwarded-Host, is refused
// however B is set up; B's own proofs pass where B can tell its URL.
func TestDPoPForgedHost(t *testing.T) {
	a := verifiertest.New(verifiertest.Config{})
	c := newDPoPClient(t)
	tok := boundToken(a, c.jkt)
	const forA, forB = "https://a.example/orders", "https://b.example/orders"
	// send asks gate g about GET /orders with the proof for url, the
	// client (or the proxy) naming host.
	send := func(g string, proxying bool, url, host string) answer {
		t.Helper()
		path := gate.PathAuth
		if proxying {
			path = "/orders"
		}
		req, err := http.NewRequest("GET", g+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header = http.Header{"Authorization": {"DPoP " + tok}, "Dpop": {c.proof(t, "GET", url, tok, a.Now())},
			"X-Forwarded-Host": {host}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Uri": {"/orders"}, "X-Forwarded-Method": {"GET"}}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return answer{status: resp.StatusCode, header: resp.Header}
	}
	refused := func(got answer) bool {
		return got.status == 401 && strings.Contains(got.header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`)
	}
	e := startEcho(t)
	for _, tc := range []struct {
		name     string
		cfg      gate.Config
		bPasses  bool // B's own proof, the request naming b.example, is accepted
		proxying bool
	}{
		{"forward-auth, nothing set", gate.Config{}, false, false},
		{"forward-auth, forwarding headers from an untrusted peer", gate.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, false, false},
		{"forward-auth, PublicURL", gate.Config{PublicURL: "https://b.example"}, true, false},
		{"proxying, nothing set", gate.Config{Upstream: e.url(t)}, false, true},
		{"proxying, PublicURL", gate.Config{Upstream: e.url(t), PublicURL: "https://b.example"}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			tc.cfg.Logger = logs.logger()
			g := startGate(t, a.Verifier(), tc.cfg)
			if got := send(g.URL, tc.proxying, forA, "a.example"); !refused(got) {
				t.Errorf("proof for %s replayed at B naming a.example = %d, want 401 invalid_dpop_proof", forA, got.status)
			}
			if got := send(g.URL, tc.proxying, forB, "b.example"); (got.status == 200) != tc.bPasses || (!tc.bPasses && !refused(got)) {
				t.Errorf("proof for %s at B = %d, want accepted %v", forB, got.status, tc.bPasses)
			}
			if !tc.bPasses && !strings.Contains(logs.String(), "--public-url") {
				t.Errorf("gate log = %q, want the missing --public-url named", logs.String())
			}
		})
	}
	t.Run("forward-auth, trusted proxy sends A's host", func(t *testing.T) {
		// A trusted proxy that routed the request for a.example says so:
		// the gate checks the proof for a.example, and its replay cache is
		// what stops a second use (here: the gate has not seen it, so the
		// first use passes, as it would at A).
		g := startGate(t, a.Verifier(), gate.Config{TrustedProxies: loopback})
		if got := send(g.URL, false, forA, "a.example"); got.status != 200 {
			t.Errorf("proof for %s, the trusted proxy naming a.example = %d, want 200", forA, got.status)
		}
		if got := send(g.URL, false, forA, "b.example"); !refused(got) {
			t.Errorf("proof for %s, the trusted proxy naming b.example = %d, want 401", forA, got.status)
		}
	})
}
