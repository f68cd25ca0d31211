package gate_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
)

// TestRefreshRescueNotHandedToThiefBehindProxy: every browser reaches the
// gate from one address (as behind a TLS terminator). A thief presenting
// the victim's spent refresh token after the grace window, without the
// victim browser's binding cookie, is not handed the successor from the
// gate's memory: the authority sees the reuse and revokes the session, as
// it would without a proxy. The victim's own browser, coming back with the
// spent token and its binding cookie, is rescued.
func TestRefreshRescueNotHandedToThiefBehindProxy(t *testing.T) {
	t.Run("thief", func(t *testing.T) {
		e := startWeb(t, nil)
		victim := e.browser(t)
		victim.login("vic", nil)
		stolen := victim.cookie(gate.CookieRefresh)
		e.advance(t, accessTTL)
		if got := victim.send("GET", "/page", true, nil); got.status != http.StatusOK || victim.cookie(gate.CookieRefresh) == stolen {
			t.Fatalf("victim's refresh = %d, want 200 with new cookies", got.status)
		}
		e.advance(t, time.Minute) // past the authority's grace window
		thief := e.browser(t)
		thief.setCookie(gate.CookieRefresh, stolen)
		got := thief.send("GET", "/page", true, nil)
		if c := got.cookies[gate.CookieRefresh]; got.status == http.StatusOK || (c != nil && c.Value != "") {
			t.Fatalf("thief with the spent token = %d, cookies %v; want no session", got.status, got.cookies)
		}
		if ids := e.sessionIDs(t, "vic"); len(ids) != 0 {
			t.Errorf("victim's sessions after the reuse = %v, want the session revoked as theft", ids)
		}
	})
	t.Run("same browser rescued", func(t *testing.T) {
		e := startWeb(t, nil)
		b := e.browser(t)
		b.login("ann", nil)
		before := map[string]string{}
		for _, n := range []string{gate.CookieAccess, gate.CookieRefresh, "__Host-tegata-bind"} {
			before[n] = b.cookie(n)
		}
		e.advance(t, accessTTL)
		if got := b.send("GET", "/page", true, nil); got.status != http.StatusOK {
			t.Fatalf("refresh = %d, want 200", got.status)
		}
		e.advance(t, time.Minute)
		for n, v := range before { // a tab that never saw the new cookies
			b.setCookie(n, v)
		}
		if got := b.send("GET", "/page", true, nil); got.status != http.StatusOK || got.saw(t).Header.Get(gate.HeaderSubject) != "ann" {
			t.Fatalf("same browser with the spent token = %d, want 200 as ann (rescued)", got.status)
		}
		if ids := e.sessionIDs(t, "ann"); len(ids) != 1 {
			t.Errorf("ann's sessions = %v, want one (not taken for theft)", ids)
		}
	})
}

// TestGateTrustedProxies: a request from a trusted proxy keeps its
// X-Forwarded-For (the gate appends the proxy), -Proto and -Host on the
// way upstream; the same headers from a peer that is not trusted are
// dropped.
func TestGateTrustedProxies(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	waitReady(t, v)
	app := startEcho(t)
	tok := a.signIn(t, "carol", nil)
	hdr := bearer(tok.AccessToken)
	hdr.Set("X-Forwarded-For", "203.0.113.7")
	hdr.Set("X-Forwarded-Proto", "https")
	hdr.Set("X-Forwarded-Host", "app.example.com")
	tests := []struct {
		name             string
		trusted          []netip.Prefix
		xff, proto, host string
	}{
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "203.0.113.7, 127.0.0.1", "https", "app.example.com"},
		{"not trusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "127.0.0.1", "http", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startGate(t, v, gate.Config{Upstream: app.url(t), TrustedProxies: tt.trusted})
			host := tt.host
			if host == "" {
				host = parseURL(t, g.URL).Host
			}
			got := do(t, "GET", g.URL+"/x", hdr)
			var e echoed
			if err := json.Unmarshal(got.body, &e); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]string{"X-Forwarded-For": tt.xff, "X-Forwarded-Proto": tt.proto, "X-Forwarded-Host": host} {
				if g := e.Header.Get(name); g != want {
					t.Errorf("upstream saw %s = %q, want %q", name, g, want)
				}
			}
		})
	}
}

// TestWebSessionEndedSaysWhy: a script's request after the session was
// revoked is answered 401 saying the session has ended, not "no token";
// the browser's cookies are cleared.
func TestWebSessionEndedSaysWhy(t *testing.T) {
	e := startWeb(t, nil)
	b := e.browser(t)
	b.login("sam", nil)
	for _, sid := range e.sessionIDs(t, "sam") {
		if _, err := e.a.admin.RevokeSession(testContext(t), client.SessionRevocation{SessionID: sid, Confirm: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	got := b.send("GET", "/api/items", false, nil)
	if d := got.errorDescription(t); got.status != http.StatusUnauthorized || !strings.Contains(d, "session has ended") {
		t.Errorf("request after revocation = %d %q, want 401 saying the session has ended", got.status, d)
	}
	if c := got.cookies[gate.CookieRefresh]; c == nil || c.MaxAge >= 0 {
		t.Errorf("refresh cookie = %v, want it cleared", c)
	}
	if got := b.send("GET", "/api/items", false, nil); got.errorDescription(t) != "no token" {
		t.Errorf("next request without cookies = %q, want no token", got.errorDescription(t))
	}
}

// TestWebUnavailableBrowsersGetHTML: while sessions cannot be checked (the
// authority is down past the staleness bound), a browser's page request
// gets an HTML page (the app's own when set) with 503 and Retry-After that
// retries by itself; a script's request keeps the JSON error.
func TestWebUnavailableBrowsersGetHTML(t *testing.T) {
	tests := []struct {
		name string
		page []byte
		want string
	}{
		{"default page", nil, `http-equiv="refresh"`},
		{"the app's page", []byte("<p>maintenance</p>"), "<p>maintenance</p>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startWeb(t, func(c *gate.WebConfig) { c.UnavailablePage = tt.page })
			b := e.browser(t)
			b.login("una", nil)
			e.a.stop(t)
			e.clock.Add(time.Minute) // nothing heard from the authority since: stale
			page := b.send("GET", "/home", true, nil)
			if page.status != http.StatusServiceUnavailable || page.header.Get("Retry-After") == "" ||
				!strings.HasPrefix(page.header.Get("Content-Type"), "text/html") || !strings.Contains(string(page.body), tt.want) {
				t.Errorf("page request while stale = %d %q %q, want 503 HTML with Retry-After containing %q",
					page.status, page.header.Get("Content-Type"), page.body, tt.want)
			}
			api := b.send("GET", "/api/items", false, nil)
			if api.status != http.StatusServiceUnavailable || api.errorDescription(t) == "" {
				t.Errorf("script request while stale = %d %s, want the JSON 503", api.status, api.body)
			}
		})
	}
}

// TestWebSignInOnPlainHTTPExplained: a sign-in from a plain-http page of a
// host other than localhost, where browsers drop Secure cookies, is
// refused before any session is made, with a message naming the fixes;
// localhost, https (as behind a TLS proxy) and --insecure-cookies sign in.
func TestWebSignInOnPlainHTTPExplained(t *testing.T) {
	tests := []struct {
		name     string
		origin   string
		insecure bool
		ok       bool
	}{
		{"plain http elsewhere", "http://app.example.test:8081", false, false},
		{"localhost", "http://localhost:8081", false, true},
		{"loopback address", "http://127.0.0.1:8081", false, true},
		{"https behind a TLS proxy", "https://app.example.test", false, true},
		{"insecure cookies for development", "http://app.example.test:8081", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startWeb(t, func(c *gate.WebConfig) { c.InsecureCookies = tt.insecure })
			b := e.browser(t)
			got := b.send("POST", "/login", true, http.Header{"Test-Login": {`{"subject":"pia"}`}, "Test-Status": {"303"}, "Origin": {tt.origin}})
			sessions := e.sessionIDs(t, "pia")
			if tt.ok {
				if got.status != http.StatusSeeOther || len(sessions) != 1 {
					t.Errorf("sign-in from %s = %d, sessions %v; want 303 and one session", tt.origin, got.status, sessions)
				}
				return
			}
			if d := got.errorDescription(t); got.status != http.StatusBadGateway || !strings.Contains(d, "https") || !strings.Contains(d, "--insecure-cookies") {
				t.Errorf("sign-in from %s = %d %q, want 502 naming https and --insecure-cookies", tt.origin, got.status, d)
			}
			if len(sessions) != 0 || len(got.cookies) != 0 {
				t.Errorf("sessions %v, cookies %v after the refused sign-in, want none", sessions, got.cookies)
			}
		})
	}
}
