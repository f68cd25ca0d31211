package console_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/console"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
)

// consoleRoutes is every route of the console with a request that reaches
// its handler, and what a signed-in admin gets.
var consoleRoutes = []struct {
	pattern string
	path    string
	form    url.Values // nil: GET
	admin   int
}{
	{"GET /console/login", "/console/login", nil, 200},
	{"POST /console/login", "/console/login", url.Values{"key": {"tgk_wrong"}}, 401},
	{"POST /console/logout", "/console/logout", url.Values{}, 303},
	{"GET /console/{$}", "/console/", nil, 200},
	{"GET /console/users", "/console/users?q=a", nil, 200},
	{"GET /console/user", "/console/user?sub=alice", nil, 200},
	{"POST /console/user/revoke", "/console/user/revoke", url.Values{"op": {"everywhere"}, "sub": {"alice"}}, 200},
	{"GET /console/confirm", "/console/confirm?seq=0", nil, 200},
	{"GET /console/api/confirm", "/console/api/confirm?seq=0", nil, 200},
	{"GET /console/verifiers", "/console/verifiers", nil, 200},
	{"GET /console/api/verifiers", "/console/api/verifiers", nil, 200},
	{"GET /console/audit", "/console/audit", nil, 200},
	{"GET /console/audit/export", "/console/audit/export?format=csv", nil, 200},
	{"GET /console/alerts", "/console/alerts", nil, 200},
	{"GET /console/keys", "/console/keys", nil, 200},
	{"POST /console/keys/rotate", "/console/keys/rotate", url.Values{}, 200},
	{"POST /console/apikeys", "/console/apikeys", url.Values{"name": {"from-test"}, "role": {"feed"}}, 200},
	{"POST /console/apikeys/revoke", "/console/apikeys/revoke", url.Values{"id": {"x"}}, 200},
}

// TestRoutesListed: the table above names every route the console
// serves, so a new route cannot escape TestAuthorization.
func TestRoutesListed(t *testing.T) {
	t.Parallel()
	var got []string
	for _, rt := range consoleRoutes {
		got = append(got, rt.pattern)
	}
	want := console.Patterns()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("routes tested = %q\nroutes served = %q", got, want)
	}
}

// TestAuthorization: only an admin API key signs in; feed and gate keys,
// wrong keys, API keys sent as bearer tokens and requests without a
// session reach no console route but the sign-in page; a signed-in admin
// reaches every one, and an unsafe request without the session's CSRF
// token or from another origin is refused.
func TestAuthorization(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	keys := map[string]string{"admin": e.APIKey}
	for _, role := range []string{"feed", "gate"} {
		k, err := e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: role + "-key", Role: role})
		if err != nil {
			t.Fatal(err)
		}
		keys[role] = k.Key
	}
	signIn := map[string]int{"admin": 303, "feed": 403, "gate": 403}
	for role, key := range keys {
		b := newBrowser(t, e.ConsoleURL)
		res := b.signIn(key)
		if res.StatusCode != signIn[role] {
			t.Errorf("sign in with the %s key = %d, want %d", role, res.StatusCode, signIn[role])
		}
		if role != "admin" {
			if len(b.cookies) != 0 {
				t.Errorf("sign in with the %s key set cookies %v", role, b.cookies)
			}
			if !strings.Contains(res.body, "role "+role) {
				t.Errorf("sign in with the %s key: the page does not name the role\n%s", role, res.body)
			}
		}
	}
	for _, rt := range consoleRoutes {
		for role, key := range keys {
			// An API key is no console credential, whatever its role.
			b := newBrowser(t, e.ConsoleURL)
			res := b.do(method(rt.form), rt.path, rt.form, map[string]string{"Authorization": "Bearer " + key})
			if want := anonymous(rt.pattern, rt.admin); res.StatusCode != want {
				t.Errorf("%s with a %s key as bearer, no session = %d, want %d", rt.pattern, role, res.StatusCode, want)
			}
		}
		b := e.signedIn(t)
		var res response
		if rt.form == nil {
			res = b.get(rt.path)
		} else {
			res = b.post(rt.path, cloneForm(rt.form))
		}
		if res.StatusCode != rt.admin {
			t.Errorf("%s signed in as admin = %d, want %d\n%.1000s", rt.pattern, res.StatusCode, rt.admin, res.body)
		}
		if rt.form == nil || rt.pattern == "POST /console/login" {
			continue
		}
		b = e.signedIn(t)
		form := cloneForm(rt.form)
		form.Set("csrf", "forged")
		if res := b.post(rt.path, form); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s with a wrong CSRF token = %d, want 403", rt.pattern, res.StatusCode)
		}
		form.Set("csrf", b.csrf)
		res = b.do("POST", rt.path, form, map[string]string{"Sec-Fetch-Site": "cross-site"})
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s cross-site = %d, want 403", rt.pattern, res.StatusCode)
		}
	}
}

func method(form url.Values) string {
	if form == nil {
		return "GET"
	}
	return "POST"
}

func cloneForm(f url.Values) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = slices.Clone(v)
	}
	return out
}

// anonymous is what a request without a session gets: the sign-in page
// and its form answer; pages redirect to sign in; scripts' endpoints and
// forms get 401.
func anonymous(pattern string, admin int) int {
	switch {
	case strings.HasSuffix(pattern, "/console/login"):
		return admin
	case strings.HasPrefix(pattern, "GET ") && !strings.Contains(pattern, "/api/"):
		return http.StatusSeeOther
	}
	return http.StatusUnauthorized
}

// TestSecurityHeaders: every answer forbids inline script and style and
// framing, and the session cookies are __Host-, Secure, HttpOnly and
// SameSite=Strict.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	b := newBrowser(t, e.ConsoleURL)
	for _, path := range []string{"/console/login", "/console/", "/console/nope", "/console/assets/console.js"} {
		res := b.get(path)
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || res.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: CSP %q, X-Frame-Options %q", path, csp, res.Header.Get("X-Frame-Options"))
		}
	}
	res := b.signIn(e.APIKey)
	wantStatus(t, "sign in", res, http.StatusSeeOther)
	names := map[string]bool{}
	for _, c := range res.Cookies() {
		names[c.Name] = true
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie %+v, want __Host-, Secure, HttpOnly, SameSite=Strict, Path=/, no Domain", c)
		}
	}
	if len(names) != 3 {
		t.Errorf("sign in set cookies %v, want the access, refresh and CSRF cookies", names)
	}
	// Pages carry no inline script or style for the CSP to refuse.
	page := b.get("/console/").body
	for _, bad := range []string{"<script>", "style=", "onclick", "onload"} {
		if strings.Contains(page, bad) {
			t.Errorf("the overview contains %q", bad)
		}
	}
}

// TestSessionLifetime: a session in use is refreshed and lives on; one
// idle past the timeout ends (and is revoked); signing out ends it; a
// revoked API key's sessions end at once.
func TestSessionLifetime(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.ConsoleIdleTimeout = 10 * time.Minute })
	b := e.signedIn(t)
	for range 3 { // 24 minutes of use, a request every 8
		e.clock.Add(8 * time.Minute)
		wantStatus(t, "overview while in use", b.get("/console/"), http.StatusOK)
	}
	e.clock.Add(11 * time.Minute)
	res := b.get("/console/")
	wantStatus(t, "overview after 11 idle minutes", res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "/console/login?") {
		t.Errorf("idle session sent to %q, want the sign-in page", loc)
	}
	subject := console.SubjectPrefix
	ss := consoleSessions(t, e, subject)
	if len(ss) != 0 {
		t.Errorf("after the idle timeout %d console sessions live, want 0", len(ss))
	}

	b = e.signedIn(t)
	wantStatus(t, "sign out", b.post("/console/logout", nil), http.StatusSeeOther)
	wantStatus(t, "overview after signing out", b.get("/console/"), http.StatusSeeOther)

	// A second admin key signs in; revoking it ends its session.
	k, err := e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "second", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	b2 := newBrowser(t, e.ConsoleURL)
	wantStatus(t, "sign in with the second key", b2.signIn(k.Key), http.StatusSeeOther)
	wantStatus(t, "overview", b2.get("/console/"), http.StatusOK)
	ops := e.signedIn(t)
	ops.get("/console/keys")
	wantStatus(t, "revoke the second key", ops.post("/console/apikeys/revoke", url.Values{"id": {k.ID}, "confirmed": {"yes"}}), http.StatusSeeOther)
	wantStatus(t, "the second key's session after its revocation", b2.get("/console/"), http.StatusSeeOther)
}

// consoleSessions lists the live console sessions of every API key.
func consoleSessions(t *testing.T, e *env, prefix string) []client.Session {
	t.Helper()
	keys, err := e.admin.APIKeys(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []client.Session
	for _, k := range keys {
		ss, err := e.admin.Sessions(ctx(t), prefix+k.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ss...)
	}
	return out
}

// TestConsoleAddr: with --console-addr the console is served there and not
// on the API's listener; with --console=false nowhere.
func TestConsoleAddr(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.ConsoleAddr = "127.0.0.1:0" })
	if strings.HasPrefix(e.ConsoleURL, e.URL) {
		t.Fatalf("ConsoleURL %q is on the API listener %q", e.ConsoleURL, e.URL)
	}
	wantStatus(t, "the console on its own address", newBrowser(t, e.ConsoleURL).get("/console/login"), http.StatusOK)
	res := newBrowser(t, e.URL).get("/console/login")
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /console/login on the API listener = %d, want 404", res.StatusCode)
	}
	off := start(t, func(c *server.Config) { c.NoConsole = true })
	if off.ConsoleURL != "" {
		t.Errorf("ConsoleURL with the console off = %q, want empty", off.ConsoleURL)
	}
	if res := newBrowser(t, off.URL).get("/console/login"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /console/login with the console off = %d, want 404", res.StatusCode)
	}
}

// TestSignInAudited: a console sign-in writes a console.sign_in record and
// a sign-out or an idle timeout a session.revoke record, each by the API
// key's name, naming its id and the console session, never the secret; a
// refused sign-in writes none. On SQLite and on Postgres.
func TestSignInAudited(t *testing.T) {
	t.Parallel()
	backends := []struct {
		name string
		tune func(t *testing.T) func(*server.Config)
	}{
		{"sqlite", func(*testing.T) func(*server.Config) {
			return func(c *server.Config) { c.ConsoleIdleTimeout = 10 * time.Minute }
		}},
		{"postgres", func(t *testing.T) func(*server.Config) {
			dsn := migrated.Schema(t)
			return func(c *server.Config) { c.ConsoleIdleTimeout, c.DB = 10*time.Minute, dsn }
		}},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, be.tune(t))
			k, err := e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "alice-ops", Role: "admin"})
			if err != nil {
				t.Fatal(err)
			}
			feed, err := e.admin.CreateAPIKey(ctx(t), client.APIKeyRequest{Name: "feed-only", Role: "feed"})
			if err != nil {
				t.Fatal(err)
			}
			b := newBrowser(t, e.ConsoleURL)
			wantStatus(t, "sign in with a feed key", b.signIn(feed.Key), http.StatusForbidden)
			wantStatus(t, "sign in with a wrong key", b.signIn("tgk_wrong"), http.StatusUnauthorized)

			first := signInOut(t, e, b, k.Key, func() {
				wantStatus(t, "sign out", b.post("/console/logout", nil), http.StatusSeeOther)
			})
			second := signInOut(t, e, b, k.Key, func() {
				e.clock.Add(11 * time.Minute)
				wantStatus(t, "overview after the idle timeout", b.get("/console/"), http.StatusSeeOther)
			})

			page, err := e.admin.Audit(ctx(t), client.AuditQuery{})
			if err != nil {
				t.Fatal(err)
			}
			want := []client.AuditRecord{
				{By: "api-key:alice-ops", Reason: "console sign-in, key " + k.ID, Action: "console.sign_in", Target: first},
				{By: "api-key:alice-ops", Reason: "console sign-out, key " + k.ID, Action: "session.revoke", Target: first},
				{By: "api-key:alice-ops", Reason: "console sign-in, key " + k.ID, Action: "console.sign_in", Target: second},
				{By: "api-key:alice-ops", Reason: "console session timed out, key " + k.ID, Action: "session.revoke", Target: second},
			}
			var got []client.AuditRecord
			for _, r := range page.Records {
				for _, field := range []string{r.By, r.Reason, r.Target} {
					if strings.Contains(field, k.Key) || strings.Contains(field, feed.Key) {
						t.Errorf("audit record %+v holds an API key's secret", r)
					}
				}
				if r.Action == "console.sign_in" || strings.HasPrefix(r.Reason, "console ") {
					got = append(got, client.AuditRecord{By: r.By, Reason: r.Reason, Action: r.Action, Target: r.Target})
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("console records in the audit trail:\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// signInOut signs in with key, runs end (which must end the console
// session) and returns the session's id.
func signInOut(t *testing.T, e *env, b *browser, key string, end func()) string {
	t.Helper()
	wantStatus(t, "sign in", b.signIn(key), http.StatusSeeOther)
	wantStatus(t, "overview", b.get("/console/"), http.StatusOK)
	ss := consoleSessions(t, e, console.SubjectPrefix)
	if len(ss) != 1 {
		t.Fatalf("%d console sessions live after sign-in, want 1", len(ss))
	}
	end()
	if n := len(consoleSessions(t, e, console.SubjectPrefix)); n != 0 {
		t.Fatalf("%d console sessions live after it ended, want 0", n)
	}
	return ss[0].ID
}
