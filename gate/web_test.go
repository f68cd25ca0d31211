package gate_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
)

// TestWebLogin: the app's X-Tegata-Login answer becomes a session at the
// authority and two cookies on that same answer, which otherwise passes
// unchanged.
func TestWebLogin(t *testing.T) {
	e := startWeb(t, nil)
	b := e.browser(t)
	got := b.login("alice", map[string]any{"roles": []string{"editor"}})

	if loc := got.header.Get("Location"); loc != "/home" {
		t.Errorf("Location = %q, want the app's /home", loc)
	}
	if h := got.header.Get(gate.HeaderLogin); h != "" {
		t.Errorf("the browser saw %s = %q, want it removed", gate.HeaderLogin, h)
	}
	if got.cookies["app"] == nil {
		t.Errorf("the app's own Set-Cookie was lost: %v", got.header.Values("Set-Cookie"))
	}
	for name, want := range map[string]time.Duration{gate.CookieAccess: accessTTL, gate.CookieRefresh: 30 * 24 * time.Hour} {
		c := got.cookies[name]
		if c == nil {
			t.Fatalf("no %s cookie in %q", name, got.header.Values("Set-Cookie"))
		}
		if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("%s: HttpOnly=%v Secure=%v SameSite=%v Path=%q Domain=%q, want HttpOnly, Secure, Lax, /, no Domain",
				name, c.HttpOnly, c.Secure, c.SameSite, c.Path, c.Domain)
		}
		if age := time.Duration(c.MaxAge) * time.Second; age < want-5*time.Second || age > want {
			t.Errorf("%s Max-Age = %v, want the token's lifetime %v", name, age, want)
		}
	}
	claims := e.claimsOf(t, b.cookie(gate.CookieAccess))
	if claims["sub"] != "alice" || !strings.Contains(strings.Join(anyStrings(claims["roles"]), ","), "editor") {
		t.Errorf("access cookie claims = %v, want alice with roles [editor]", claims)
	}
	list, err := e.a.admin.Sessions(testContext(t), "alice")
	if err != nil || len(list) != 1 || list[0].ID != claims["sid"] || list[0].Device != "Firefox on Windows" {
		t.Errorf("alice's sessions = %+v, %v; want the one session, device from the User-Agent", list, err)
	}

	// The next request is signed in and carries the identity to the app,
	// without the session cookies but with the app's own.
	b.setCookie("theme", "dark")
	saw := b.send("GET", "/home", true, nil).saw(t)
	if saw.Header.Get("X-Tegata-Subject") != "alice" || saw.Header.Get("X-Tegata-Session") != claims["sid"] ||
		saw.Header.Get("X-Tegata-Claim-Roles") != `["editor"]` {
		t.Errorf("the app saw identity %q/%q/%q, want alice, the session and [\"editor\"]", saw.Header.Get("X-Tegata-Subject"),
			saw.Header.Get("X-Tegata-Session"), saw.Header.Get("X-Tegata-Claim-Roles"))
	}
	if c := saw.Header.Get("Cookie"); strings.Contains(c, "tegata") || !strings.Contains(c, "theme=dark") {
		t.Errorf("the app saw Cookie %q, want theme=dark and no session cookie", c)
	}
}

func anyStrings(v any) []string {
	var out []string
	if list, ok := v.([]any); ok {
		for _, x := range list {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

// TestWebLoginFailure: a sign-in that cannot be carried out replaces the
// app's answer with 502 and sets no cookie.
func TestWebLoginFailure(t *testing.T) {
	e := startWeb(t, nil)
	tests := []struct{ name, login, why string }{
		{"not JSON", `alice`, "not the JSON of a login"},
		{"no subject", `{"claims":{"role":"x"}}`, `no "subject"`},
		{"typo in a field", `{"subjcet":"alice"}`, `unknown field "subjcet"`},
		{"refused by the authority (reserved claim)", `{"subject":"alice","claims":{"sub":"root"}}`, `the authority refused it: claim "sub" is reserved`},
		{"refused by the authority (subject)", `{"subject":"alice "}`, "leading or trailing whitespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser(t)
			since := len(e.logs.String())
			got := b.send("POST", "/login", true, http.Header{"Test-Login": {tt.login}, "Test-Status": {"303"}})
			desc := got.errorDescription(t)
			if got.status != http.StatusBadGateway || !strings.HasPrefix(desc, "the app's X-Tegata-Login was refused: ") ||
				!strings.Contains(desc, tt.why) {
				t.Fatalf("sign-in with %s = %d %s, want 502 saying the app's X-Tegata-Login was refused: ...%s", tt.login, got.status, got.body, tt.why)
			}
			if logs := e.logs.String()[since:]; !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "path=/login") ||
				!strings.Contains(logs, "X-Tegata-Login was refused") || !strings.Contains(logs, strings.ReplaceAll(tt.why, `"`, `\"`)) {
				t.Errorf("the app's refused login is not logged at ERROR with its path and why:\n%s", logs)
			}
			if len(got.header.Values("Set-Cookie")) != 0 || got.header.Get("Location") != "" {
				t.Errorf("failed sign-in answer has Set-Cookie %q, Location %q; want neither", got.header.Values("Set-Cookie"), got.header.Get("Location"))
			}
		})
	}
	if ids := e.sessionIDs(t, "alice"); len(ids) != 0 {
		t.Errorf("alice has sessions %v after failed sign-ins, want none", ids)
	}
}

// TestWebLoginHeaderFromClientDropped: a client cannot hand the gate a
// login, nor forge identity headers.
func TestWebLoginHeaderFromClientDropped(t *testing.T) {
	e := startWeb(t, nil)
	b := e.browser(t)
	got := b.send("GET", "/about", true, http.Header{
		gate.HeaderLogin:   {`{"subject":"admin"}`},
		"X-Tegata-Subject": {"admin"},
	})
	saw := got.saw(t)
	for _, h := range []string{gate.HeaderLogin, "X-Tegata-Subject"} {
		if v := saw.Header.Get(h); v != "" {
			t.Errorf("the app saw the client's %s = %q, want it dropped", h, v)
		}
	}
	if len(got.cookies) > 1 || e.sessionIDs(t, "admin") != nil {
		t.Errorf("a client-sent %s signed someone in: cookies %v", gate.HeaderLogin, got.cookies)
	}
}

// TestWebNewSessionOnLogin: signing in again, or as someone else, on a
// browser that has a session creates a new session id and revokes the old
// one (no fixation; one session per browser).
func TestWebNewSessionOnLogin(t *testing.T) {
	e := startWeb(t, nil)
	b := e.browser(t)
	b.login("alice", map[string]any{"role": "viewer"})
	oldAT := b.cookie(gate.CookieAccess)
	oldSID := e.claimsOf(t, oldAT)["sid"].(string)

	b.login("alice", map[string]any{"role": "admin"}) // a privilege change
	newSID := e.claimsOf(t, b.cookie(gate.CookieAccess))["sid"].(string)
	if newSID == oldSID {
		t.Fatalf("sign-in kept session id %s, want a new one", oldSID)
	}
	if ids := e.sessionIDs(t, "alice"); !slices.Equal(ids, []string{newSID}) {
		t.Errorf("alice's sessions = %v, want only the new %s", ids, newSID)
	}
	if _, err := e.v.Verify(testContext(t), oldAT); err == nil {
		t.Errorf("the old session's access token still verifies at this gate, want it revoked at once")
	}

	b.login("bob", nil)
	if ids := e.sessionIDs(t, "alice"); len(ids) != 0 {
		t.Errorf("after signing in as bob, alice's sessions on this browser = %v, want none", ids)
	}
}

// TestWebRefresh: an access token that is missing, about to expire or
// expired is replaced with the refresh cookie before the request goes on,
// and both cookies change (rotation).
func TestWebRefresh(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, e *webEnv, b *browser)
	}{
		{"access cookie gone (expired in the browser)", func(t *testing.T, e *webEnv, b *browser) {
			b.setCookie(gate.CookieAccess, "")
		}},
		{"within RefreshBefore of expiry", func(t *testing.T, e *webEnv, b *browser) {
			e.advance(t, accessTTL-gate.RefreshBefore+5*time.Second)
		}},
		{"expired", func(t *testing.T, e *webEnv, b *browser) {
			e.advance(t, accessTTL+2*time.Minute)
		}},
		{"garbage access cookie", func(t *testing.T, e *webEnv, b *browser) {
			b.setCookie(gate.CookieAccess, "a.b.c")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startWeb(t, nil)
			b := e.browser(t)
			b.login("carol", map[string]any{"team": "blue"})
			oldAT, oldRT := b.cookie(gate.CookieAccess), b.cookie(gate.CookieRefresh)
			sid := e.claimsOf(t, oldAT)["sid"]
			tt.prepare(t, e, b)

			got := b.send("GET", "/home", true, nil)
			if got.status != http.StatusOK {
				t.Fatalf("GET /home = %d %s, want 200", got.status, got.body)
			}
			saw := got.saw(t)
			if saw.Header.Get("X-Tegata-Subject") != "carol" || saw.Header.Get("X-Tegata-Session") != sid {
				t.Errorf("the app saw %q/%q, want carol in session %v", saw.Header.Get("X-Tegata-Subject"), saw.Header.Get("X-Tegata-Session"), sid)
			}
			at, rt := got.cookies[gate.CookieAccess], got.cookies[gate.CookieRefresh]
			if at == nil || rt == nil || at.Value == oldAT || rt.Value == oldRT || at.MaxAge <= 0 || rt.MaxAge <= 0 {
				t.Fatalf("refresh set cookies %v, want both replaced", got.cookies)
			}
			if got.header.Get("Cache-Control") != "no-store" {
				t.Errorf("an answer setting session cookies has Cache-Control %q, want no-store", got.header.Get("Cache-Control"))
			}
			// The old refresh token is spent: presenting it past the grace
			// window would be theft. The browser uses the new one.
			again := b.send("GET", "/home", true, nil)
			if again.status != http.StatusOK || again.cookies[gate.CookieAccess] != nil || again.cookies[gate.CookieRefresh] != nil {
				t.Errorf("next request = %d with cookies %v, want 200 and no new session cookies", again.status, again.cookies)
			}
		})
	}
}

// TestWebRefreshRefused: a refresh the authority refuses (session revoked)
// clears both cookies and the request goes on as anonymous: a page request
// is sent to the login page.
func TestWebRefreshRefused(t *testing.T) {
	e := startWeb(t, nil)
	b := e.browser(t)
	b.login("dave", nil)
	sid := e.claimsOf(t, b.cookie(gate.CookieAccess))["sid"].(string)
	rev, err := e.a.admin.RevokeSession(testContext(t), client.SessionRevocation{SessionID: sid, Reason: "stolen laptop"})
	if err != nil {
		t.Fatal(err)
	}
	waitPosition(t, e, rev.Entry.Seq)

	got := b.send("GET", "/reports?year=2026", true, nil)
	if got.status != http.StatusSeeOther || got.header.Get("Location") != "/login?next=%2Freports%3Fyear%3D2026" {
		t.Fatalf("GET /reports after revocation = %d Location %q, want 303 to /login?next=%%2Freports%%3Fyear%%3D2026", got.status, got.header.Get("Location"))
	}
	for _, name := range []string{gate.CookieAccess, gate.CookieRefresh} {
		if c := got.cookies[name]; c == nil || c.MaxAge >= 0 {
			t.Errorf("cookie %s = %v, want it cleared (Max-Age=0)", name, c)
		}
	}
	if e.app.hits.Load() != 1 { // the sign-in only
		t.Errorf("the app was reached %d times, want once (the sign-in)", e.app.hits.Load())
	}
}

// TestWebRefreshBudget: made-up refresh cookies cannot spend the gate's
// budget at the authority. One not shaped like a refresh token is dropped
// (cookies cleared, the request anonymous) without asking; well-shaped
// guesses are refused by the authority and cost their address ten times
// an exchange, past which refreshes from it get 429 (other addresses keep
// theirs: TestRefreshLimitedPerAddress).
func TestWebRefreshBudget(t *testing.T) {
	var refreshes atomic.Int64
	e := startWeb(t, func(c *gate.WebConfig) {
		c.RefreshPerAddress = 0.1 // a burst of 1
		c.Authority.HTTPClient = &http.Client{Transport: refreshCounter{&refreshes}}
	})
	guess := e.browser(t)
	guess.setCookie(gate.CookieRefresh, "not-a-refresh-token")
	got := guess.send("GET", "/reports", false, nil)
	if got.status != http.StatusUnauthorized || refreshes.Load() != 0 {
		t.Fatalf("GET with a malformed refresh cookie = %d, %d refreshes; want 401 (anonymous) and none", got.status, refreshes.Load())
	}
	if c := got.cookies[gate.CookieRefresh]; c == nil || c.MaxAge >= 0 {
		t.Errorf("malformed refresh cookie = %v, want it cleared", c)
	}

	shaped := strings.Repeat("A", 43)
	guess.setCookie(gate.CookieRefresh, shaped)
	if got = guess.send("GET", "/reports", false, nil); got.status != http.StatusUnauthorized || refreshes.Load() != 1 {
		t.Fatalf("GET with a made-up refresh cookie = %d, %d refreshes; want 401 after one refused refresh", got.status, refreshes.Load())
	}
	guess.setCookie(gate.CookieRefresh, shaped[:42]+"Q")
	got = guess.send("GET", "/reports", false, nil)
	if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" || refreshes.Load() != 1 {
		t.Fatalf("second made-up refresh from the address = %d (Retry-After %q), %d refreshes; want 429 and no call",
			got.status, got.header.Get("Retry-After"), refreshes.Load())
	}
	if !strings.Contains(e.logs.String(), "level=WARN msg=\"gate: refreshes from one address over the limit") {
		t.Errorf("the first limited refresh is not logged at warn:\n%s", e.logs.String())
	}
}

// refreshCounter counts the refresh calls a client makes.
type refreshCounter struct{ n *atomic.Int64 }

func (c refreshCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v1/token/refresh" {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestWebRoleChange: scope=access with new claims cuts off the access
// token; the gate refreshes it and the app sees the new claims on the next
// request, without a new sign-in.
func TestWebRoleChange(t *testing.T) {
	e := startWeb(t, nil)
	b := e.browser(t)
	b.login("erin", map[string]any{"role": "viewer"})
	sid := e.claimsOf(t, b.cookie(gate.CookieAccess))["sid"]
	rev, err := e.a.admin.RevokeSubject(testContext(t), client.SubjectRevocation{Subject: "erin", Scope: "access", Reason: "promoted", Claims: map[string]any{"role": "admin"}})
	if err != nil {
		t.Fatal(err)
	}
	waitPosition(t, e, rev.Entry.Seq)
	saw := b.send("GET", "/home", true, nil).saw(t)
	if saw.Header.Get("X-Tegata-Claim-Role") != "admin" || saw.Header.Get("X-Tegata-Session") != sid {
		t.Errorf("after the role change the app saw role %q in session %q, want admin in the same session %v",
			saw.Header.Get("X-Tegata-Claim-Role"), saw.Header.Get("X-Tegata-Session"), sid)
	}
}

// TestWebRefreshAcrossGates: two gates presented the same refresh token
// (a browser's requests balanced over both) each get tokens, the same
// successor, and the session lives: the authority's grace window.
func TestWebRefreshAcrossGates(t *testing.T) {
	e := startWeb(t, nil)
	b := e.browser(t)
	b.login("fay", nil)
	oldRT := b.cookie(gate.CookieRefresh)
	b.setCookie(gate.CookieAccess, "")
	first := b.send("GET", "/home", true, nil)

	ocfg := gate.WebConfig{Authority: &client.Client{BaseURL: e.a.URL, APIKey: e.gateKey}, Logger: quiet()}
	ocfg.Clock = e.clock
	other, err := gate.NewWeb(e.v, ocfg)
	if err != nil {
		t.Fatal(err)
	}
	g2 := startGate(t, e.v, gate.Config{Upstream: e.app.url(t), Web: other})
	b2 := &browser{t: t, e: &webEnv{gate: g2}, ua: firefoxUA, jar: map[string]string{gate.CookieRefresh: oldRT}}
	second := b2.send("GET", "/home", true, nil)
	if first.status != 200 || second.status != 200 {
		t.Fatalf("refresh at gate 1 = %d, at gate 2 with the same token = %d; want 200 twice", first.status, second.status)
	}
	if a, b := first.cookies[gate.CookieRefresh].Value, second.cookies[gate.CookieRefresh].Value; a != b {
		t.Errorf("the two gates got different successors %q and %q, want the same", a, b)
	}
	if ids := e.sessionIDs(t, "fay"); len(ids) != 1 {
		t.Errorf("fay's sessions = %v, want the session alive (not taken for theft)", ids)
	}
}

// waitPosition waits until the gate's verifier has applied seq.
func waitPosition(t *testing.T, e *webEnv, seq int64) {
	t.Helper()
	eventually(t, revocationDeadline, "revocation applied at the gate", func() bool { return e.v.State().Position >= seq })
}

// TestWebAnonymous: public paths reach the app without identity; others
// send page requests to the login page and refuse everything else with 401.
func TestWebAnonymous(t *testing.T) {
	e := startWeb(t, nil)
	tests := []struct {
		name     string
		method   string
		path     string
		nav      bool
		status   int
		location string
	}{
		{"login page (always public)", "GET", "/login?next=%2Fx", true, 200, ""},
		{"under a public prefix", "GET", "/assets/app.css", false, 200, ""},
		{"public path itself", "GET", "/about", true, 200, ""},
		{"below a public path", "GET", "/about/team", true, 200, ""},
		{"a path that only starts like a public one", "GET", "/aboutus", true, 303, "/login?next=%2Faboutus"},
		{"dot segments (refused before any rule, like the plain proxy)", "GET", "/assets/../admin", true, 400, ""},
		{"a dot segment with path parameters under a public prefix", "GET", "/login/..;/admin", true, 400, ""},
		{"page request", "GET", "/dash?tab=2", true, 303, "/login?next=%2Fdash%3Ftab%3D2"},
		{"HEAD page request", "HEAD", "/dash", true, 303, "/login?next=%2Fdash"},
		{"script fetch", "GET", "/api/items", false, 401, ""},
		{"form post", "POST", "/notes", true, 401, ""},
		{"self-service page", "GET", "/.tegata/devices", true, 303, "/login?next=%2F.tegata%2Fdevices"},
		{"self-service JSON", "GET", "/.tegata/sessions", false, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.browser(t).send(tt.method, tt.path, tt.nav, nil)
			if got.status != tt.status || got.header.Get("Location") != tt.location {
				t.Fatalf("%s %s = %d Location %q, want %d %q", tt.method, tt.path, got.status, got.header.Get("Location"), tt.status, tt.location)
			}
			switch tt.status {
			case 200:
				if s := got.saw(t).Header.Get("X-Tegata-Subject"); s != "" {
					t.Errorf("the app saw X-Tegata-Subject %q on an anonymous request", s)
				}
			case 401:
				if c := got.header.Get("WWW-Authenticate"); c != bareChallenge {
					t.Errorf("WWW-Authenticate = %q, want %q", c, bareChallenge)
				}
				if tt.method != "HEAD" && got.errorDescription(t) != "no token" {
					t.Errorf("401 body %s, want error_description \"no token\"", got.body)
				}
			}
		})
	}
}

// TestWebLogout: X-Tegata-Logout ends this session or all of the subject's,
// clears the cookies and tells the browser to drop the site's cookies; the
// gate refuses the old tokens at once.
func TestWebLogout(t *testing.T) {
	for _, everywhere := range []bool{false, true} {
		scope := map[bool]string{false: gate.LogoutSession, true: gate.LogoutEverywhere}[everywhere]
		t.Run(scope, func(t *testing.T) {
			e := startWeb(t, nil)
			b, other := e.browser(t), e.browser(t)
			b.login("gina", nil)
			other.login("gina", nil)
			oldAT := b.cookie(gate.CookieAccess)
			otherSID := e.claimsOf(t, other.cookie(gate.CookieAccess))["sid"].(string)

			got := b.send("POST", "/logout", true, http.Header{"Test-Logout": {scope}, "Test-Status": {"303"}})
			if got.status != http.StatusSeeOther || got.header.Get(gate.HeaderLogout) != "" {
				t.Fatalf("logout = %d, %s = %q; want the app's 303, header removed", got.status, gate.HeaderLogout, got.header.Get(gate.HeaderLogout))
			}
			checkSignedOut(t, got)
			want := []string{otherSID}
			if everywhere {
				want = nil
			}
			if ids := e.sessionIDs(t, "gina"); !slices.Equal(ids, want) {
				t.Errorf("gina's sessions after logout %s = %v, want %v", scope, ids, want)
			}
			b.setCookie(gate.CookieAccess, oldAT)
			if again := b.send("GET", "/api/me", false, nil); again.status != http.StatusUnauthorized {
				t.Errorf("the signed-out access token right after logout = %d, want 401 at once", again.status)
			}
		})
	}
}

func checkSignedOut(t *testing.T, got reply) {
	t.Helper()
	for _, name := range []string{gate.CookieAccess, gate.CookieRefresh} {
		if c := got.cookies[name]; c == nil || c.MaxAge >= 0 || !c.Secure || !c.HttpOnly {
			t.Errorf("cookie %s = %v, want it cleared with the same attributes", name, c)
		}
	}
	if got.header.Get("Clear-Site-Data") != `"cookies"` || got.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Clear-Site-Data %q, Cache-Control %q; want \"cookies\" and no-store",
			got.header.Get("Clear-Site-Data"), got.header.Get("Cache-Control"))
	}
}

// TestWebLogoutThenLogin: "everywhere" and a login in one answer (a
// password change) leave one fresh session for this browser.
func TestWebLogoutThenLogin(t *testing.T) {
	e := startWeb(t, nil)
	b, other := e.browser(t), e.browser(t)
	b.login("hal", nil)
	other.login("hal", nil)
	got := b.send("POST", "/password", true, http.Header{"Test-Logout": {gate.LogoutEverywhere},
		"Test-Login": {`{"subject":"hal"}`}, "Test-Status": {"303"}})
	if got.status != http.StatusSeeOther || got.header.Get("Clear-Site-Data") != "" {
		t.Fatalf("logout+login = %d, Clear-Site-Data %q; want 303 and no Clear-Site-Data (it would drop the new cookies)",
			got.status, got.header.Get("Clear-Site-Data"))
	}
	sid := e.claimsOf(t, b.cookie(gate.CookieAccess))["sid"].(string)
	if ids := e.sessionIDs(t, "hal"); !slices.Equal(ids, []string{sid}) {
		t.Errorf("hal's sessions = %v, want only the new one %s", ids, sid)
	}
}

// TestWebLogoutBadValue: an unknown X-Tegata-Logout value is the app's bug:
// 502, and the session stays.
func TestWebLogoutBadValue(t *testing.T) {
	e := startWeb(t, nil)
	b := e.browser(t)
	b.login("ivy", nil)
	got := b.send("POST", "/logout", true, http.Header{"Test-Logout": {"all"}})
	if got.status != http.StatusBadGateway || len(got.cookies) != 0 {
		t.Fatalf("logout with a bad value = %d cookies %v, want 502 and no cookie change", got.status, got.cookies)
	}
	if ids := e.sessionIDs(t, "ivy"); len(ids) != 1 {
		t.Errorf("ivy's sessions = %v, want the session kept", ids)
	}
}

// TestWebSelfService: the /.tegata/ endpoints serve the signed-in user's
// own session and devices.
func TestWebSelfService(t *testing.T) {
	e := startWeb(t, nil)
	laptop, phone, stranger := e.browser(t), e.browser(t), e.browser(t)
	phone.ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"
	laptop.login("jo", map[string]any{"role": "editor"})
	phone.login("jo", nil)
	stranger.login("kim", nil)
	laptopSID := e.claimsOf(t, laptop.cookie(gate.CookieAccess))["sid"].(string)
	phoneSID := e.claimsOf(t, phone.cookie(gate.CookieAccess))["sid"].(string)
	kimSID := e.claimsOf(t, stranger.cookie(gate.CookieAccess))["sid"].(string)

	t.Run("session", func(t *testing.T) {
		got := laptop.send("GET", "/.tegata/session", false, nil)
		var s struct {
			Subject   string         `json:"subject"`
			SessionID string         `json:"session_id"`
			Claims    map[string]any `json:"claims"`
			Expires   time.Time      `json:"access_expires_at"`
		}
		if err := json.Unmarshal(got.body, &s); err != nil || got.status != 200 {
			t.Fatalf("GET /.tegata/session = %d %s (%v)", got.status, got.body, err)
		}
		if s.Subject != "jo" || s.SessionID != laptopSID || s.Claims["role"] != "editor" || s.Expires.IsZero() {
			t.Errorf("GET /.tegata/session = %+v, want jo, %s, role editor, an expiry", s, laptopSID)
		}
	})
	t.Run("sessions", func(t *testing.T) {
		got := laptop.send("GET", "/.tegata/sessions", false, nil)
		var body struct {
			Sessions []map[string]any `json:"sessions"`
		}
		if err := json.Unmarshal(got.body, &body); err != nil || got.status != 200 {
			t.Fatalf("GET /.tegata/sessions = %d %s (%v)", got.status, got.body, err)
		}
		current := map[string]bool{}
		for _, s := range body.Sessions {
			for _, f := range []string{"session_id", "device", "created_at", "last_refreshed_at", "current"} {
				if _, ok := s[f]; !ok {
					t.Errorf("session %v lacks %q", s, f)
				}
			}
			current[s["session_id"].(string)] = s["current"].(bool)
		}
		if len(current) != 2 || !current[laptopSID] || current[phoneSID] {
			t.Errorf("sessions current flags = %v, want laptop %s current, phone %s not", current, laptopSID, phoneSID)
		}
	})
	t.Run("devices page", func(t *testing.T) {
		got := laptop.send("GET", "/.tegata/devices", true, nil)
		page := string(got.body)
		if got.status != 200 || !strings.HasPrefix(got.header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /.tegata/devices = %d %s", got.status, got.header.Get("Content-Type"))
		}
		for _, want := range []string{"Firefox on Windows", "Safari on iPhone", "This device", "jo",
			`action="/.tegata/sessions/` + phoneSID + `/revoke"`, `action="/.tegata/logout-everywhere"`, `name="viewport"`} {
			if !strings.Contains(page, want) {
				t.Errorf("devices page lacks %q", want)
			}
		}
		for _, banned := range []string{"<script", "<link", "src=", "http://", "https://"} {
			if strings.Contains(page, banned) {
				t.Errorf("devices page contains %q: it must load nothing and run no script", banned)
			}
		}
		csp := got.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			got.header.Get("Cache-Control") != "no-store" {
			t.Errorf("devices page CSP %q, Cache-Control %q", csp, got.header.Get("Cache-Control"))
		}
	})
	t.Run("revoke someone else's session", func(t *testing.T) {
		got := laptop.send("POST", "/.tegata/sessions/"+kimSID+"/revoke", false, nil)
		if got.status != http.StatusNotFound {
			t.Errorf("revoking kim's session as jo = %d %s, want 404", got.status, got.body)
		}
		if ids := e.sessionIDs(t, "kim"); !slices.Equal(ids, []string{kimSID}) {
			t.Errorf("kim's sessions = %v, want %s untouched", ids, kimSID)
		}
	})
	t.Run("revoke own other device from the page", func(t *testing.T) {
		got := laptop.send("POST", "/.tegata/sessions/"+phoneSID+"/revoke", true, nil)
		if got.status != http.StatusSeeOther || got.header.Get("Location") != "/.tegata/devices" || len(got.cookies) != 0 {
			t.Fatalf("revoke from the page = %d Location %q cookies %v, want 303 back to the page, cookies kept",
				got.status, got.header.Get("Location"), got.cookies)
		}
		if next := phone.send("GET", "/home", true, nil); next.status != http.StatusSeeOther {
			t.Errorf("the phone's next page = %d, want 303 to the login page at once", next.status)
		}
	})
	t.Run("methods and unknown paths", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			status       int
		}{
			{"POST", "/.tegata/sessions", 405}, {"GET", "/.tegata/logout", 405},
			{"GET", "/.tegata/sessions/" + laptopSID + "/revoke", 405}, {"GET", "/.tegata/nothing", 404},
		} {
			if got := laptop.send(c.method, c.path, false, nil); got.status != c.status {
				t.Errorf("%s %s = %d, want %d", c.method, c.path, got.status, c.status)
			}
		}
	})
	t.Run("logout endpoints", func(t *testing.T) {
		got := laptop.send("POST", "/.tegata/logout", false, nil)
		if got.status != 200 {
			t.Fatalf("POST /.tegata/logout = %d %s", got.status, got.body)
		}
		checkSignedOut(t, got)
		stranger2 := e.browser(t)
		stranger2.login("kim", nil)
		got = stranger2.send("POST", "/.tegata/logout-everywhere", true, nil)
		if got.status != http.StatusSeeOther || got.header.Get("Location") != "/login" {
			t.Errorf("POST /.tegata/logout-everywhere from a form = %d Location %q, want 303 to /login", got.status, got.header.Get("Location"))
		}
		checkSignedOut(t, got)
		if ids := e.sessionIDs(t, "kim"); len(ids) != 0 {
			t.Errorf("kim's sessions after logout everywhere = %v, want none", ids)
		}
	})
}

// TestWebCrossOrigin: an unsafe request that relies on cookies is refused
// unless the browser says it comes from the same origin.
func TestWebCrossOrigin(t *testing.T) {
	e := startWeb(t, func(c *gate.WebConfig) { c.Origin = "https://app.example.com" })
	b := e.browser(t)
	b.login("lee", nil)
	host := strings.TrimPrefix(e.gate.URL, "http://")
	tests := []struct {
		name   string
		method string
		hdr    http.Header
		status int
	}{
		{"cross-site form post", "POST", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"same-site, other origin (SameSite=Lax would send the cookie)", "POST", http.Header{"Sec-Fetch-Site": {"same-site"}}, 403},
		{"same-origin", "POST", http.Header{"Sec-Fetch-Site": {"same-origin"}}, 200},
		{"user typed it (none)", "DELETE", http.Header{"Sec-Fetch-Site": {"none"}}, 200},
		{"old browser, other Origin", "PUT", http.Header{"Sec-Fetch-Site": nil, "Origin": {"https://evil.example"}}, 403},
		{"old browser, own Origin", "POST", http.Header{"Sec-Fetch-Site": nil, "Origin": {"http://" + host}}, 200},
		{"the configured origin (Host rewritten by a proxy)", "POST", http.Header{"Sec-Fetch-Site": nil, "Origin": {"https://app.example.com"}}, 200},
		{"not a browser (neither header)", "POST", http.Header{"Sec-Fetch-Site": nil}, 200},
		{"cross-site GET is safe", "GET", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.app.hits.Load()
			got := b.send(tt.method, "/notes", true, tt.hdr)
			if got.status != tt.status {
				t.Fatalf("%s /notes %v = %d %s, want %d", tt.method, tt.hdr, got.status, got.body, tt.status)
			}
			if tt.status == 403 {
				if got.errorDescription(t) != "cross-origin request refused" || e.app.hits.Load() != before {
					t.Errorf("refused request: body %s, app reached %d times; want the JSON error and the app untouched",
						got.body, e.app.hits.Load()-before)
				}
			}
		})
	}
	// The exemption and the identity come from one reading of the
	// Authorization header: a request is exempt exactly when its header,
	// not its cookies, authenticates it. Each case carries the session
	// cookies of lee's browser.
	tok := e.a.signIn(t, "kim", nil)
	for _, tc := range []struct {
		name, authorization string
		status              int
		subject             string
	}{
		{"a valid bearer token: exempt, the request is kim's", "Bearer " + tok.AccessToken, 200, "kim"},
		{"an empty Authorization header: the cookies authenticate, so checked", "", 403, ""},
		{"a malformed bearer token: exempt, and refused as a bearer token", "Bearer not*a*token", 401, ""},
		{"another scheme: exempt, and refused", "Basic a2ltOmtpbQ==", 401, ""},
		{"the DPoP scheme, which web sessions do not take: exempt, and refused", "DPoP " + tok.AccessToken, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.app.hits.Load()
			got := b.send("POST", "/notes", true, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Authorization": {tc.authorization}})
			if got.status != tc.status {
				t.Fatalf("cross-site POST with cookies and Authorization %q = %d %s, want %d", tc.authorization, got.status, got.body, tc.status)
			}
			if tc.status != 200 {
				if n := e.app.hits.Load() - before; n != 0 {
					t.Errorf("the app was reached %d times, want 0", n)
				}
				return
			}
			if s := got.saw(t).Header.Get("X-Tegata-Subject"); s != tc.subject {
				t.Errorf("the app saw subject %q, want %q", s, tc.subject)
			}
		})
	}
	t.Run("anonymous cross-site post to the login form (login CSRF)", func(t *testing.T) {
		got := e.browser(t).send("POST", "/login", true, http.Header{"Sec-Fetch-Site": {"cross-site"},
			"Test-Login": {`{"subject":"attacker"}`}})
		if got.status != 403 || e.sessionIDs(t, "attacker") != nil {
			t.Errorf("cross-site login post = %d, want 403 and no session", got.status)
		}
	})
}

// TestWebCookieSettings: --insecure-cookies and --cookie-samesite strict.
func TestWebCookieSettings(t *testing.T) {
	e := startWeb(t, func(c *gate.WebConfig) { c.InsecureCookies, c.SameSite = true, http.SameSiteStrictMode })
	b := e.browser(t)
	got := b.send("POST", "/login", true, http.Header{"Test-Login": {`{"subject":"max"}`}, "Test-Status": {"303"}})
	if got.cookies[gate.CookieAccess] != nil || got.cookies[gate.CookieRefresh] != nil {
		t.Fatalf("cookies = %v, want the names without __Host-", got.cookies)
	}
	for _, name := range []string{gate.InsecureCookieAccess, gate.InsecureCookieRefresh} {
		c := got.cookies[name]
		if c == nil || c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
			t.Errorf("cookie %s = %v, want HttpOnly, not Secure, SameSite=Strict", name, c)
		}
	}
	if saw := b.send("GET", "/home", true, nil).saw(t); saw.Header.Get("X-Tegata-Subject") != "max" {
		t.Errorf("signed in with insecure cookies, the app saw %q, want max", saw.Header.Get("X-Tegata-Subject"))
	}
}

// TestNewWebRefusesMisconfiguration names each bad setting.
func TestNewWebRefusesMisconfiguration(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	auth := a.admin
	tests := []struct {
		name string
		cfg  gate.WebConfig
		want string
	}{
		{"no authority", gate.WebConfig{}, "Authority"},
		{"SameSite None", gate.WebConfig{Authority: auth, SameSite: http.SameSiteNoneMode}, "Lax or Strict"},
		{"origin with a path", gate.WebConfig{Authority: auth, Origin: "https://app.example.com/app"}, "scheme://host"},
		{"origin without scheme", gate.WebConfig{Authority: auth, Origin: "app.example.com"}, "scheme://host"},
		{"relative login path", gate.WebConfig{Authority: auth, LoginPath: "login"}, "login path"},
		{"login path with a query", gate.WebConfig{Authority: auth, LoginPath: "/login?x=1"}, "login path"},
		{"relative public prefix", gate.WebConfig{Authority: auth, Public: []string{"assets/"}}, "public prefix"},
		{"relative login handoff path", gate.WebConfig{Authority: auth, LoginHandoffPaths: []string{"login"}}, "login handoff path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := gate.NewWeb(v, tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewWeb(%+v) = %v, want an error mentioning %q", tt.cfg, err, tt.want)
			}
		})
	}
}

// TestWebLoginHandoffPaths: with LoginHandoffPaths, only answers to those
// paths sign in; an X-Tegata-Login on any other answer (say, another
// server's headers passed through by an image proxy route) is refused with
// 502 before anything is carried out, and the browser's session is kept.
func TestWebLoginHandoffPaths(t *testing.T) {
	e := startWeb(t, func(c *gate.WebConfig) {
		c.LoginHandoffPaths = []string{"/login", "/sso/"}
		c.Public = append(c.Public, "/sso/")
	})
	b := e.browser(t)
	b.login("zed", nil) // POST /login
	if got := e.browser(t).send("GET", "/sso/callback", true, http.Header{"Test-Login": {`{"subject":"zoe"}`}, "Test-Status": {"303"}}); got.status != http.StatusSeeOther || got.cookies[gate.CookieAccess] == nil {
		t.Fatalf("sign-in on /sso/callback = %d cookies %v, want 303 with the session cookies", got.status, got.cookies)
	}
	for _, path := range []string{"/img/proxy", "/login2", "/sso"} {
		got := b.send("GET", path, false, http.Header{"Test-Login": {`{"subject":"mallory"}`}, "Test-Logout": {gate.LogoutEverywhere}})
		if got.status != http.StatusBadGateway || len(got.cookies) != 0 || !strings.Contains(got.errorDescription(t), "login handoff paths") {
			t.Errorf("X-Tegata-Login on the answer to %s = %d %s cookies %v, want 502 naming the login handoff paths, cookies kept",
				path, got.status, got.body, got.cookies)
		}
	}
	if ids := e.sessionIDs(t, "mallory"); len(ids) != 0 {
		t.Errorf("mallory's sessions = %v, want none", ids)
	}
	if ids := e.sessionIDs(t, "zed"); len(ids) != 1 {
		t.Errorf("zed's sessions = %v, want the session kept (the refused answer's logout not carried out)", ids)
	}
	if !strings.Contains(e.logs.String(), "not accepted on the answer to /img/proxy") {
		t.Errorf("the refused handoff is not logged with its path:\n%s", e.logs.String())
	}
}
