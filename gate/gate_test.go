package gate_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/verifier"
)

// revocationDeadline bounds how long a revocation may take to reach the
// gate in these tests. Propagation is milliseconds; the slack is for a busy
// CI machine, and the test passes as soon as the gate refuses.
const revocationDeadline = 5 * time.Second

const bareChallenge = `Bearer realm="tegata"`

func challenge(reason string) string {
	return `Bearer realm="tegata", error="invalid_token", error_description="` + reason + `"`
}

func TestForwardAuth(t *testing.T) {
	a := startAuthority(t)
	logs := &logBuffer{}
	v := newVerifier(t, a.URL, a.APIKey, logs.logger(), nil)
	waitReady(t, v)
	g := startGate(t, v, gate.Config{Logger: logs.logger()})
	tok := a.signIn(t, "alice", map[string]any{"role": "admin", "tenant_id": 7, "scopes": []string{"read", "write"}})

	type want struct {
		status    int
		challenge string // WWW-Authenticate on 401
		subject   string // X-Tegata-Subject on 200
	}
	ok := want{status: http.StatusOK, subject: "alice"}
	tests := []struct {
		name   string
		method string
		path   string
		header http.Header
		want   want
	}{
		{"bearer", "GET", "/auth", bearer(tok.AccessToken), ok},
		{"bearer, any method", "POST", "/auth", bearer(tok.AccessToken), ok},
		{"bearer, HEAD", "HEAD", "/auth", bearer(tok.AccessToken), ok},
		{"bearer at / (Traefik)", "GET", "/", bearer(tok.AccessToken), ok},
		{"bearer under /auth/ (Envoy path_prefix)", "DELETE", "/auth/api/items/1", bearer(tok.AccessToken), ok},
		{"cookie", "GET", "/auth", http.Header{"Cookie": {"other=1; tegata_at=" + tok.AccessToken}}, ok},
		{"header and the same cookie", "GET", "/auth", http.Header{"Authorization": {"Bearer " + tok.AccessToken}, "Cookie": {"tegata_at=" + tok.AccessToken}}, ok},
		{"header and another cookie", "GET", "/auth", http.Header{"Authorization": {"Bearer " + tok.AccessToken}, "Cookie": {"tegata_at=garbage"}}, want{status: 401, challenge: challenge("token invalid")}},
		{"header and an empty cookie", "GET", "/auth", http.Header{"Authorization": {"Bearer " + tok.AccessToken}, "Cookie": {"tegata_at="}}, ok},
		{"no token", "GET", "/auth", nil, want{status: 401, challenge: bareChallenge}},
		{"empty cookie", "GET", "/auth", http.Header{"Cookie": {"tegata_at="}}, want{status: 401, challenge: bareChallenge}},
		{"garbage bearer", "GET", "/auth", bearer("garbage"), want{status: 401, challenge: challenge("token invalid")}},
		{"garbage cookie", "GET", "/auth", http.Header{"Cookie": {"tegata_at=a.b.c"}}, want{status: 401, challenge: challenge("token invalid")}},
		{"basic auth", "GET", "/auth", http.Header{"Authorization": {"Basic YWxpY2U6cHc="}}, want{status: 401, challenge: challenge("token invalid")}},
		{"malformed header does not fall back to cookie", "GET", "/auth", http.Header{"Authorization": {"Basic x"}, "Cookie": {"tegata_at=" + tok.AccessToken}}, want{status: 401, challenge: challenge("token invalid")}},
		{"refresh token is not an access token", "GET", "/auth", bearer(tok.RefreshToken), want{status: 401, challenge: challenge("token invalid")}},
		{"other path", "GET", "/api", bearer(tok.AccessToken), want{status: 404}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, tt.method, g.URL+tt.path, tt.header)
			if got.status != tt.want.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, got.status, got.body, tt.want.status)
			}
			if c := got.header.Get("WWW-Authenticate"); c != tt.want.challenge {
				t.Errorf("%s %s: WWW-Authenticate = %q, want %q", tt.method, tt.path, c, tt.want.challenge)
			}
			if s := got.header.Get("X-Tegata-Subject"); s != tt.want.subject {
				t.Errorf("%s %s: X-Tegata-Subject = %q, want %q", tt.method, tt.path, s, tt.want.subject)
			}
			if tt.want.status == http.StatusUnauthorized && tt.method != "HEAD" {
				if d, reason := got.errorDescription(t), reasonOf(tt.want.challenge); d != reason {
					t.Errorf("%s %s: error_description = %q, want %q", tt.method, tt.path, d, reason)
				}
			}
		})
	}

	t.Run("other path: the 404 says what this gate is", func(t *testing.T) {
		d := do(t, "GET", g.URL+"/api", bearer(tok.AccessToken)).errorDescription(t)
		for _, want := range []string{"forward-auth", "/auth", "/healthz", "/readyz", "upstream"} {
			if !strings.Contains(d, want) {
				t.Errorf("GET /api: error_description %q lacks %q", d, want)
			}
		}
	})

	t.Run("identity headers", func(t *testing.T) {
		got := do(t, "GET", g.URL+"/auth", bearer(tok.AccessToken))
		want := map[string]string{
			"X-Tegata-Subject":          "alice",
			"X-Tegata-Session":          tok.SessionID,
			"X-Tegata-Claim-Role":       "admin",
			"X-Tegata-Claim-Tenant-Id":  "7",
			"X-Tegata-Claim-Scopes":     `["read","write"]`,
			"X-Tegata-Claims-Truncated": "",
		}
		for k, v := range want {
			if g := got.header.Get(k); g != v {
				t.Errorf("GET /auth: %s = %q, want %q", k, g, v)
			}
		}
	})

	do(t, "GET", g.URL+"/auth", http.Header{"X-Original-URI": {"/private/page?key=hunter2"}})
	if l := logs.String(); !strings.Contains(l, "original_path=/private/page") || strings.Contains(l, "hunter2") {
		t.Errorf("refusal log should name the original path without its query:\n%s", l)
	}
	if l := logs.String(); strings.Contains(l, tok.AccessToken) || strings.Contains(l, tok.RefreshToken) {
		t.Errorf("a token appears in the logs:\n%s", l)
	}
	if l := logs.String(); !strings.Contains(l, "gate: request refused") {
		t.Errorf("refusals are not logged:\n%s", l)
	}
}

// reasonOf returns the error_description a challenge carries ("no token"
// for a bare one).
func reasonOf(challenge string) string {
	_, r, ok := strings.Cut(challenge, `error_description="`)
	if !ok {
		return "no token"
	}
	return strings.TrimSuffix(r, `"`)
}

// TestDuplicateTokenCookiesRefused: a request with two token cookies, or a
// token cookie beside the Authorization header the gate verifies, is
// refused before the upstream sees it, so an app that reads the cookie
// itself can never get one the gate did not check.
func TestDuplicateTokenCookiesRefused(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	waitReady(t, v)
	app := startEcho(t)
	tok := a.signIn(t, "grace", nil)
	evil := a.signIn(t, "mallory", nil)
	tests := []struct {
		name   string
		header http.Header
	}{
		{"two token cookies in one header", http.Header{"Cookie": {"tegata_at=" + tok.AccessToken + "; tegata_at=" + evil.AccessToken}}},
		{"two token cookies in two headers", http.Header{"Cookie": {"tegata_at=" + tok.AccessToken, "tegata_at=" + evil.AccessToken}}},
		{"a second cookie Go would skip", http.Header{"Cookie": {"tegata_at=" + tok.AccessToken + `; tegata_at=a\b`}}},
		{"a second cookie PHP reads under the same name", http.Header{"Cookie": {"tegata_at=" + tok.AccessToken + "; tegata.at=" + evil.AccessToken}}},
		{"a percent-encoded second name", http.Header{"Cookie": {"tegata_at=" + tok.AccessToken + "; tegata%5Fat=" + evil.AccessToken}}},
		{"a header and another token's cookie", http.Header{"Authorization": {"Bearer " + tok.AccessToken}, "Cookie": {"tegata_at=" + evil.AccessToken}}},
	}
	for _, mode := range []struct {
		name string
		cfg  gate.Config
		path string
	}{{"forward-auth", gate.Config{}, "/auth"}, {"proxy", gate.Config{Upstream: app.url(t)}, "/items"}} {
		g := startGate(t, v, mode.cfg)
		for _, tt := range tests {
			t.Run(mode.name+"/"+tt.name, func(t *testing.T) {
				before := app.hits.Load()
				got := do(t, "GET", g.URL+mode.path, tt.header)
				if got.status != http.StatusUnauthorized || got.header.Get("WWW-Authenticate") != challenge("token invalid") {
					t.Errorf("GET %s with %s = %d %q, want 401 token invalid", mode.path, tt.name, got.status, got.header.Get("WWW-Authenticate"))
				}
				if n := app.hits.Load() - before; n != 0 {
					t.Errorf("upstream got %d refused requests, want 0", n)
				}
			})
		}
	}
}

func TestRevokedTokenRefused(t *testing.T) {
	a := startAuthority(t)
	logs := &logBuffer{}
	v := newVerifier(t, a.URL, a.APIKey, logs.logger(), nil)
	waitReady(t, v)
	g := startGate(t, v, gate.Config{Logger: logs.logger()})
	tok := a.signIn(t, "bob", nil)
	other := a.signIn(t, "bob", nil)

	if got := do(t, "GET", g.URL+"/auth", bearer(tok.AccessToken)); got.status != http.StatusOK {
		t.Fatalf("GET /auth before revocation = %d %s, want 200", got.status, got.body)
	}
	a.revoke(t, tok.SessionID)
	var last answer
	eventually(t, revocationDeadline, "revoked token refused", func() bool {
		last = do(t, "GET", g.URL+"/auth", bearer(tok.AccessToken))
		return last.status == http.StatusUnauthorized
	})
	if c := last.header.Get("WWW-Authenticate"); c != challenge("token revoked") {
		t.Errorf("WWW-Authenticate = %q, want %q", c, challenge("token revoked"))
	}
	if got := do(t, "GET", g.URL+"/auth", bearer(other.AccessToken)); got.status != http.StatusOK {
		t.Errorf("GET /auth with the subject's other session = %d %s, want 200", got.status, got.body)
	}
	if l := logs.String(); !strings.Contains(l, "level=INFO msg=\"gate: request refused\" reason=\"token revoked\"") {
		t.Errorf("revocation refusal not logged at Info:\n%s", l)
	}
}

func TestProxy(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	waitReady(t, v)
	app := startEcho(t)
	up := app.url(t)
	up.Path = "/app"
	g := startGate(t, v, gate.Config{Upstream: up})
	tok := a.signIn(t, "carol", map[string]any{"tenant": "acme"})
	spoofed := http.Header{
		"Authorization":         {"Bearer " + tok.AccessToken},
		"X-Tegata-Subject":      {"mallory"},
		"X-Tegata-Claim-Admin":  {"true"},
		"X-Tegata-Claim-Tenant": {"evil"},
		"X_tegata_session":      {"forged"},
		"X-Forwarded-For":       {"10.9.9.9"},
	}

	t.Run("verified request forwarded with verified headers only", func(t *testing.T) {
		got := do(t, "PUT", g.URL+"/items/1?x=y", spoofed)
		if got.status != http.StatusOK {
			t.Fatalf("PUT /items/1 = %d %s, want 200", got.status, got.body)
		}
		var e echoed
		if err := json.Unmarshal(got.body, &e); err != nil {
			t.Fatal(err)
		}
		if e.Method != "PUT" || e.Path != "/app/items/1" || e.Query != "x=y" {
			t.Errorf("upstream saw %s %s?%s, want PUT /app/items/1?x=y", e.Method, e.Path, e.Query)
		}
		want := map[string][]string{
			"X-Tegata-Subject":      {"carol"},
			"X-Tegata-Session":      {tok.SessionID},
			"X-Tegata-Claim-Tenant": {"acme"},
			"Authorization":         {"Bearer " + tok.AccessToken},
		}
		for k, vs := range want {
			if g := e.Header[k]; strings.Join(g, "|") != strings.Join(vs, "|") {
				t.Errorf("upstream saw %s = %q, want %q", k, g, vs)
			}
		}
		for _, k := range []string{"X-Tegata-Claim-Admin", "X_tegata_session"} {
			if g, ok := e.Header[k]; ok {
				t.Errorf("upstream saw spoofed %s = %q, want it stripped", k, g)
			}
		}
		if xff := e.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
			t.Errorf("upstream saw X-Forwarded-For = %q, want 127.0.0.1 (the client's own value dropped)", xff)
		}
	})

	t.Run("refused request never reaches upstream", func(t *testing.T) {
		before := app.hits.Load()
		h := spoofed.Clone()
		h.Set("Authorization", "Bearer garbage")
		got := do(t, "GET", g.URL+"/items/1", h)
		if got.status != http.StatusUnauthorized {
			t.Errorf("GET /items/1 with garbage token = %d, want 401", got.status)
		}
		got = do(t, "GET", g.URL+"/items/1", http.Header{"X-Tegata-Subject": {"mallory"}})
		if got.status != http.StatusUnauthorized || got.header.Get("WWW-Authenticate") != bareChallenge {
			t.Errorf("GET /items/1 without token = %d %q, want 401 %q", got.status, got.header.Get("WWW-Authenticate"), bareChallenge)
		}
		if n := app.hits.Load() - before; n != 0 {
			t.Errorf("upstream got %d refused requests, want 0", n)
		}
	})

	t.Run("health paths are not proxied", func(t *testing.T) {
		before := app.hits.Load()
		for _, p := range []string{"/healthz", "/readyz"} {
			if got := do(t, "GET", g.URL+p, nil); got.status != http.StatusOK {
				t.Errorf("GET %s = %d %s, want 200", p, got.status, got.body)
			}
		}
		if n := app.hits.Load() - before; n != 0 {
			t.Errorf("upstream got %d health requests, want 0", n)
		}
	})

	t.Run("upstream down", func(t *testing.T) {
		dead := startEcho(t)
		u := dead.url(t)
		dead.Close()
		g := startGate(t, v, gate.Config{Upstream: u})
		got := do(t, "GET", g.URL+"/x", bearer(tok.AccessToken))
		if got.status != http.StatusBadGateway {
			t.Errorf("GET /x with upstream down = %d %s, want 502", got.status, got.body)
		}
	})
}

// TestUpstreamPrefixDotSegments: no path reaches the app outside the
// prefix the gate exposes, in any spelling the app could resolve there:
// /../x and /%2e%2e/x (which would become /prefix/../x, that is /x), and
// /x/..;/y, which servlet containers resolve the same way.
func TestUpstreamPrefixDotSegments(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	waitReady(t, v)
	app := startEcho(t)
	up := app.url(t)
	up.Path = "/app"
	g := startGate(t, v, gate.Config{Upstream: up})
	auth := bearer(a.signIn(t, "heidi", nil).AccessToken)
	for _, target := range []string{
		"/../admin", "/%2e%2e/admin", "/%2E%2e/admin", "/.%2e/admin", "/x/../../admin",
		"/login/..;/admin", "/x/..;jsessionid=1/admin", "/.;/admin", "/x/%2e%2e;/admin",
		"/x/..%2F..%2Fadmin", "/x/..%5C..%5Cadmin", "/./admin", "/%2e/admin", "/..",
	} {
		before := app.hits.Load()
		got := doRaw(t, g.URL, target, auth)
		if got.status != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", target, got.status)
		}
		if n := app.hits.Load() - before; n != 0 {
			t.Errorf("GET %s reached the upstream", target)
		}
	}
	for target, want := range map[string]string{"/a..b/c": "/app/a..b/c", "/.well-known/x": "/app/.well-known/x", "/x/...": "/app/x/...", "/x;v=1/y": "/app/x;v=1/y"} {
		got := doRaw(t, g.URL, target, auth)
		var e echoed
		if err := json.Unmarshal(got.body, &e); got.status != http.StatusOK || err != nil || e.URI != want {
			t.Errorf("GET %s = %d, upstream saw %q, want 200 and %q", target, got.status, e.URI, want)
		}
	}
}

// TestDELInClaimEscaped: DEL (0x7f) in a claim is escaped in the forwarded
// header like any control character (docs/gate.md promises printable
// ASCII), so the request is proxied instead of refused by Go's transport
// with a 502.
func TestDELInClaimEscaped(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	waitReady(t, v)
	app := startEcho(t)
	g := startGate(t, v, gate.Config{Upstream: app.url(t)})
	tok := a.signIn(t, "ivan", map[string]any{"label": "a\x7fb", "tags": []any{"\x7f"}})
	got := do(t, "GET", g.URL+"/x", bearer(tok.AccessToken))
	if got.status != http.StatusOK {
		t.Fatalf("GET /x with DEL in claims = %d %s, want 200", got.status, got.body)
	}
	var e echoed
	if err := json.Unmarshal(got.body, &e); err != nil {
		t.Fatal(err)
	}
	if l, tags := e.Header.Get("X-Tegata-Claim-Label"), e.Header.Get("X-Tegata-Claim-Tags"); l != `"a\u007fb"` || tags != `["\u007f"]` {
		t.Errorf("upstream saw label %q tags %q, want %q and %q", l, tags, `"a\u007fb"`, `["\u007f"]`)
	}
	fa := startGate(t, v, gate.Config{})
	if got := do(t, "GET", fa.URL+"/auth", bearer(tok.AccessToken)); got.header.Get("X-Tegata-Claim-Label") != `"a\u007fb"` {
		t.Errorf("GET /auth: X-Tegata-Claim-Label = %q, want %q", got.header.Get("X-Tegata-Claim-Label"), `"a\u007fb"`)
	}
}

// readyz returns the /readyz status and its decoded body.
func readyz(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	got := do(t, "GET", base+"/readyz", nil)
	var body map[string]any
	if err := json.Unmarshal(got.body, &body); err != nil {
		t.Fatalf("GET /readyz body %q: %v", got.body, err)
	}
	return got.status, body
}

func TestReadiness(t *testing.T) {
	a := startAuthority(t)
	fg := startFeedGate(t, a.URL)
	v := newVerifier(t, fg.URL, a.APIKey, nil, nil)
	g := startGate(t, v, gate.Config{})
	tok := a.signIn(t, "dave", nil)

	if got := do(t, "GET", g.URL+"/healthz", nil); got.status != http.StatusOK || strings.TrimSpace(string(got.body)) != `{"status":"ok"}` {
		t.Errorf("GET /healthz before sync = %d %s, want 200 {\"status\":\"ok\"}", got.status, got.body)
	}
	if status, body := readyz(t, g.URL); status != http.StatusServiceUnavailable || body["ready"] != false || body["status"] != "not_ready" ||
		body["reason"] != "not caught up with the authority's feed" {
		t.Errorf("GET /readyz before sync = %d %v, want 503 not ready, saying it has not caught up", status, body)
	}
	got := do(t, "GET", g.URL+"/auth", bearer(tok.AccessToken))
	if want := challenge("verifier not in sync with authority"); got.status != 401 || got.header.Get("WWW-Authenticate") != want {
		t.Errorf("GET /auth before sync = %d %q, want 401 %q", got.status, got.header.Get("WWW-Authenticate"), want)
	}

	fg.open()
	waitReady(t, v)
	if status, body := readyz(t, g.URL); status != http.StatusOK || body["ready"] != true || body["status"] != "ready" || body["reason"] != nil {
		t.Errorf("GET /readyz after sync = %d %v, want 200 ready without a reason", status, body)
	}
	if got := do(t, "GET", g.URL+"/auth", bearer(tok.AccessToken)); got.status != http.StatusOK {
		t.Errorf("GET /auth after sync = %d %s, want 200", got.status, got.body)
	}
	if got := do(t, "POST", g.URL+"/readyz", nil); got.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /readyz = %d, want 405", got.status)
	}
}

func TestStaleAfterAuthorityLoss(t *testing.T) {
	a := startAuthority(t)
	const staleAfter = 300 * time.Millisecond
	v := newVerifier(t, a.URL, a.APIKey, nil, func(c *verifier.Config) { c.StaleAfter = staleAfter })
	waitReady(t, v)
	g := startGate(t, v, gate.Config{})
	tok := a.signIn(t, "erin", nil)
	if got := do(t, "GET", g.URL+"/auth", bearer(tok.AccessToken)); got.status != http.StatusOK {
		t.Fatalf("GET /auth = %d %s, want 200", got.status, got.body)
	}
	a.stop(t)
	eventually(t, 10*staleAfter+2*time.Second, "readyz reports not ready", func() bool {
		status, _ := readyz(t, g.URL)
		return status == http.StatusServiceUnavailable
	})
	got := do(t, "GET", g.URL+"/auth", bearer(tok.AccessToken))
	if want := challenge("verifier not in sync with authority"); got.status != 401 || got.header.Get("WWW-Authenticate") != want {
		t.Errorf("GET /auth while stale = %d %q, want 401 %q", got.status, got.header.Get("WWW-Authenticate"), want)
	}
}

func TestIntrospectionFallback(t *testing.T) {
	a := startAuthority(t)
	fg := startFeedGate(t, a.URL) // the feed never opens: the state stays stale
	v := newVerifier(t, fg.URL, a.APIKey, nil, func(c *verifier.Config) { c.Introspect = true })
	g := startGate(t, v, gate.Config{})
	live := a.signIn(t, "frank", nil)
	dead := a.signIn(t, "frank", nil)
	a.revoke(t, dead.SessionID)

	if status, _ := readyz(t, g.URL); status != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with the feed held = %d, want 503", status)
	}
	if got := do(t, "GET", g.URL+"/auth", bearer(live.AccessToken)); got.status != http.StatusOK || got.header.Get("X-Tegata-Subject") != "frank" {
		t.Errorf("GET /auth, live token, introspected = %d %q, want 200 frank", got.status, got.header.Get("X-Tegata-Subject"))
	}
	got := do(t, "GET", g.URL+"/auth", bearer(dead.AccessToken))
	if want := challenge("token revoked"); got.status != 401 || got.header.Get("WWW-Authenticate") != want {
		t.Errorf("GET /auth, revoked token, introspected = %d %q, want 401 %q", got.status, got.header.Get("WWW-Authenticate"), want)
	}
}
