package gate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/internal/dbsc"
	"github.com/tegata-dev/tegata/internal/dbsc/dbsctest"
	"github.com/tegata-dev/tegata/internal/keyproof"
)

// dbscBrowser is a scripted DBSC browser (dbsctest) on the gate's origin,
// on the test's clock.
func (e *webEnv) dbscBrowser(noDBSC bool) *dbsctest.Browser {
	return &dbsctest.Browser{Origin: e.gate.URL, Now: e.clock.Now, NoDBSC: noDBSC}
}

// dbscLogin signs b in as subject through the app's X-Tegata-Login and
// returns the sign-in answer.
func dbscLogin(t *testing.T, b *dbsctest.Browser, subject string) *http.Response {
	t.Helper()
	l, err := json.Marshal(gate.Login{Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(testContext(t), http.MethodPost, b.Origin+"/login", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Test-Login", string(l))
	req.Header.Set("Test-Status", "303")
	req.Header.Set("Accept", "text/html")
	resp, body, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in = %d %s, want 303", resp.StatusCode, body)
	}
	return resp
}

// dbscGet navigates b to /home and returns the status and the session id
// the app saw ("" when the request reached it anonymous or not at all).
func dbscGet(t *testing.T, b *dbsctest.Browser) (int, string) {
	t.Helper()
	resp, body, err := b.Get(testContext(t), "/home")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ""
	}
	var saw appSaw
	if err := json.Unmarshal(body, &saw); err != nil {
		t.Fatalf("app answer %q: %v", body, err)
	}
	return resp.StatusCode, saw.Header.Get("X-Tegata-Session")
}

func kinds(events []dbsctest.Event) map[string]int {
	n := map[string]int{}
	for _, e := range events {
		n[e.Kind]++
	}
	return n
}

// bindingOf returns the session's binding kind at the authority, "" if
// unbound, and whether it is live.
func (e *webEnv) bindingOf(t *testing.T, sid string) (string, bool) {
	t.Helper()
	s, err := e.a.admin.Session(testContext(t), sid)
	if errors.Is(err, client.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("Session(%s): %v", sid, err)
	}
	if s.Binding == nil {
		return "", true
	}
	return s.Binding.Kind, true
}

// TestDBSCBindAndRefresh: a DBSC browser binds its session at sign-in, its
// access cookie is short of its token, and once the cookie is gone it gets
// a new one only by signing the gate's challenge.
func TestDBSCBindAndRefresh(t *testing.T) {
	e := startWeb(t, nil)
	b := e.dbscBrowser(false)
	resp := dbscLogin(t, b, "dana")
	if reg := resp.Header.Get("Secure-Session-Registration"); !strings.HasPrefix(reg, `(ES256 RS256);path="/.tegata/dbsc/register";challenge="`) {
		t.Fatalf("sign-in answer Secure-Session-Registration = %q, want an ES256/RS256 offer with a challenge", reg)
	}
	ids := b.Sessions()
	if len(ids) != 1 {
		t.Fatalf("the browser holds DBSC sessions %v (events %s), want one", ids, dbsctest.Describe(b.Events()))
	}
	_, sid := dbscGet(t, b)
	if kind, live := e.bindingOf(t, sid); kind != client.BindingDBSC || !live {
		t.Fatalf("session %s at the authority: binding %q, live %v; want dbsc", sid, kind, live)
	}
	if st, saw := dbscGet(t, b); st != http.StatusOK || saw != sid {
		t.Fatalf("GET /home = %d in session %q, want 200 in %s", st, saw, sid)
	}
	rt := b.Cookies()[gate.CookieRefresh]

	// The access cookie lapses a minute before its token: the browser
	// refreshes through DBSC (a 403 with a challenge, then its proof).
	e.advance(t, accessTTL-90*time.Second)
	if _, ok := b.Cookies()[gate.CookieAccess]; !ok {
		t.Fatal("the access cookie is gone 90 s before its token expires, want it kept until 60 s before")
	}
	e.advance(t, 31*time.Second)
	if _, ok := b.Cookies()[gate.CookieAccess]; ok {
		t.Fatal("the access cookie is still there 59 s before its token expires, want it gone (boundMargin)")
	}
	if st, saw := dbscGet(t, b); st != http.StatusOK || saw != sid {
		t.Fatalf("GET /home after the cookie lapsed = %d in session %q, want 200 in %s (events %s)", st, saw, sid, dbsctest.Describe(b.Events()))
	}
	n := kinds(b.Events())
	if n["challenged"] != 1 || n["refreshed"] != 1 {
		t.Errorf("DBSC events %s, want one challenge and one refresh", dbsctest.Describe(b.Events()))
	}
	if b.Cookies()[gate.CookieRefresh] == rt {
		t.Error("the refresh cookie was not rotated by the DBSC refresh")
	}
	if kind, live := e.bindingOf(t, sid); kind != client.BindingDBSC || !live {
		t.Errorf("after the refresh the session is bound %q, live %v; want dbsc and live", kind, live)
	}
}

// TestDBSCCopiedCookies: cookies copied out of a bound browser (an
// infostealer) stop working at the next refresh, in a browser without the
// key; nothing is revoked, so the real browser keeps its session.
func TestDBSCCopiedCookies(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := startWebMetrics(t, reg)
	victim := e.dbscBrowser(false)
	dbscLogin(t, victim, "erin")
	_, sid := dbscGet(t, victim)

	thief := e.dbscBrowser(true)
	thief.SetCookies(victim.Cookies())
	if st, saw := dbscGet(t, thief); st != http.StatusOK || saw != sid {
		t.Fatalf("thief before expiry: %d in %q; want 200 in %s (a copied access token is a bearer token until it expires)", st, saw, sid)
	}
	// Past the token's expiry and the verifier's leeway.
	e.advance(t, accessTTL+2*time.Minute)
	if st, saw := dbscGet(t, thief); st != http.StatusSeeOther || saw != "" {
		t.Fatalf("thief after expiry: %d in %q; want 303 to the login page\n%s", st, saw, e.logs.String())
	}
	if st, _ := dbscGet(t, thief); st != http.StatusSeeOther {
		t.Errorf("thief, again: %d, want 303 to the login page", st)
	}
	if kind, live := e.bindingOf(t, sid); kind != client.BindingDBSC || !live {
		t.Fatalf("after the thief's try the session is bound %q, live %v; want it untouched", kind, live)
	}
	if st, saw := dbscGet(t, victim); st != http.StatusOK || saw != sid {
		t.Fatalf("the real browser: %d in %q; want 200 in %s (events %s)", st, saw, sid, dbsctest.Describe(victim.Events()))
	}
	if got := counterValue(t, reg, "tegata_gate_dbsc_total", "event", "cookie_refresh_refused"); got != 2 {
		t.Errorf("tegata_gate_dbsc_total{event=cookie_refresh_refused} = %v, want 2", got)
	}
	if got := counterValue(t, reg, "tegata_gate_dbsc_total", "event", "refreshed"); got != 1 {
		t.Errorf("tegata_gate_dbsc_total{event=refreshed} = %v, want 1", got)
	}
}

// TestDBSCProofByAnotherKey: an attacker with the cookies and the browser's
// DBSC state but its own key answers the challenge: the authority revokes
// the session as stolen, and both browsers are signed out.
func TestDBSCProofByAnotherKey(t *testing.T) {
	e := startWeb(t, nil)
	victim := e.dbscBrowser(false)
	dbscLogin(t, victim, "frank")
	_, sid := dbscGet(t, victim)

	thief := e.dbscBrowser(false)
	copied := victim.Cookies()
	delete(copied, gate.CookieAccess) // its DBSC state says: refresh first
	thief.SetCookies(copied)
	thief.CopySessionWithOwnKey(victim, victim.Sessions()[0])
	if st, _ := dbscGet(t, thief); st != http.StatusSeeOther {
		t.Fatalf("thief with its own key: %d, want 303 to the login page (events %s)", st, dbsctest.Describe(thief.Events()))
	}
	if n := kinds(thief.Events()); n["terminated"] != 1 {
		t.Errorf("thief's DBSC events %s, want its session terminated (401)", dbsctest.Describe(thief.Events()))
	}
	if _, live := e.bindingOf(t, sid); live {
		t.Fatal("the session is live after a proof by another key, want it revoked")
	}
	at := victim.Cookies()[gate.CookieAccess]
	eventually(t, revocationDeadline, "the revocation to reach the gate", func() bool {
		_, err := e.v.Verify(testContext(t), at)
		return err != nil
	})
	if st, _ := dbscGet(t, victim); st != http.StatusSeeOther {
		t.Errorf("the real browser after the theft: %d, want signed out (303)", st)
	}
	if !strings.Contains(e.logs.String(), "DBSC refresh refused") {
		t.Errorf("gate log lacks the refused refresh:\n%s", e.logs.String())
	}
}

// TestDBSCCapturedProofReplayed: a DBSC refresh captured in flight (its
// proof and the cookies it went with, the refresh cookie now spent) and
// sent again within the authority's grace window gets no cookies: the
// challenge it signs was used, so the gate asks for a fresh signature,
// which only the browser's key can give. Nothing is revoked and the
// browser keeps its session.
func TestDBSCCapturedProofReplayed(t *testing.T) {
	e := startWeb(t, nil)
	victim := e.dbscBrowser(false)
	var mu sync.Mutex
	var captured *http.Request
	victim.Sent = func(r *http.Request) {
		if r.Header.Get("Secure-Session-Response") != "" && strings.HasSuffix(r.URL.Path, "/dbsc/refresh") {
			mu.Lock()
			captured = r
			mu.Unlock()
		}
	}
	dbscLogin(t, victim, "gus")
	_, sid := dbscGet(t, victim)
	e.advance(t, accessTTL-time.Minute+time.Second) // the bound access cookie lapses
	if st, saw := dbscGet(t, victim); st != http.StatusOK || saw != sid {
		t.Fatalf("the browser's DBSC refresh: %d in %q, want 200 in %s (events %s)", st, saw, sid, dbsctest.Describe(victim.Events()))
	}
	mu.Lock()
	replay := captured
	mu.Unlock()
	if replay == nil {
		t.Fatal("no DBSC refresh with a proof was sent")
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(replay.Clone(testContext(t)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Secure-Session-Challenge") == "" || len(resp.Cookies()) != 0 {
		t.Fatalf("the captured refresh sent again = %d, challenge %q, cookies %v; want 403 with a fresh challenge and no cookies",
			resp.StatusCode, resp.Header.Get("Secure-Session-Challenge"), resp.Cookies())
	}
	if kind, live := e.bindingOf(t, sid); kind != client.BindingDBSC || !live {
		t.Fatalf("after the replay the session is bound %q, live %v; want it untouched", kind, live)
	}
	e.advance(t, accessTTL-time.Minute+time.Second)
	if st, saw := dbscGet(t, victim); st != http.StatusOK || saw != sid {
		t.Errorf("the browser's next refresh: %d in %q, want 200 in %s (events %s)", st, saw, sid, dbsctest.Describe(victim.Events()))
	}
}

// TestDBSCSignInAgain: a browser that signs in again holds the DBSC
// session of its first sign-in as well as the new one; refreshing the old
// one must end it, not revoke the new session as if its key were a
// thief's.
func TestDBSCSignInAgain(t *testing.T) {
	e := startWeb(t, nil)
	b := e.dbscBrowser(false)
	dbscLogin(t, b, "lea")
	dbscLogin(t, b, "lea")
	_, sid := dbscGet(t, b)
	if ids := b.Sessions(); len(ids) != 2 {
		t.Fatalf("DBSC sessions after two sign-ins: %v, want two (the browser keeps the first)", ids)
	}
	e.advance(t, accessTTL)
	if st, saw := dbscGet(t, b); st != http.StatusOK || saw != sid {
		t.Fatalf("after the cookie lapsed: %d in %q, want 200 in %s (events %s)", st, saw, sid, dbsctest.Describe(b.Events()))
	}
	// The scripted browser refreshes the older session first (a real one
	// may pick either; the other order leaves the first alone, since the
	// cookie they share is back).
	if n := kinds(b.Events()); n["terminated"] != 1 || n["refreshed"] != 1 {
		t.Errorf("DBSC events %s, want the first session ended and the second refreshed", dbsctest.Describe(b.Events()))
	}
	if kind, live := e.bindingOf(t, sid); kind != client.BindingDBSC || !live {
		t.Errorf("the current session is bound %q, live %v; want dbsc and live", kind, live)
	}
}

// TestDBSCConcurrentRequests: many requests of one bound browser at once,
// after its cookie lapsed, make one DBSC refresh and no theft.
func TestDBSCConcurrentRequests(t *testing.T) {
	e := startWeb(t, nil)
	b := e.dbscBrowser(false)
	dbscLogin(t, b, "gina")
	_, sid := dbscGet(t, b)
	e.advance(t, accessTTL)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for range 8 {
		wg.Go(func() {
			if st, saw := dbscGet(t, b); st != http.StatusOK || saw != sid {
				mu.Lock()
				bad = append(bad, http.StatusText(st)+" "+saw)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("concurrent requests failed: %v (events %s)", bad, dbsctest.Describe(b.Events()))
	}
	if n := kinds(b.Events()); n["refreshed"] != 1 {
		t.Errorf("DBSC events %s, want exactly one refresh", dbsctest.Describe(b.Events()))
	}
	if _, live := e.bindingOf(t, sid); !live {
		t.Error("the session was revoked by concurrent requests")
	}
}

// TestDBSCAuthorityRefusesCookieRefresh: the rule is the authority's, not
// the gate's: a bound session's refresh token alone is refused at the API
// (another gate, a script) without spending or revoking anything, and a
// repeat within the grace window gets no successor without a proof.
func TestDBSCAuthorityRefusesCookieRefresh(t *testing.T) {
	e := startWeb(t, nil)
	b := e.dbscBrowser(false)
	dbscLogin(t, b, "hugo")
	_, sid := dbscGet(t, b)
	rt := b.Cookies()[gate.CookieRefresh]
	direct := &client.Client{BaseURL: e.a.URL, APIKey: e.gateKey}
	if _, err := direct.Refresh(testContext(t), rt); !errors.Is(err, client.ErrUseDBSCChallenge) {
		t.Fatalf("Refresh(bound session's token) = %v, want ErrUseDBSCChallenge", err)
	}
	if _, live := e.bindingOf(t, sid); !live {
		t.Fatal("a refresh without a proof revoked the session, want it refused only")
	}
	// The browser refreshes (rotating rt); the spent rt within the grace
	// window, without a proof, gets nothing.
	e.advance(t, accessTTL)
	if st, _ := dbscGet(t, b); st != http.StatusOK {
		t.Fatalf("DBSC refresh: %d (events %s)", st, dbsctest.Describe(b.Events()))
	}
	if _, err := direct.Refresh(testContext(t), rt); !errors.Is(err, client.ErrUseDBSCChallenge) {
		t.Errorf("Refresh(spent token, within grace, no proof) = %v, want ErrUseDBSCChallenge", err)
	}
	if _, err := direct.RefreshDBSC(testContext(t), b.Cookies()[gate.CookieRefresh], "not.a.proof"); !errors.Is(err, client.ErrInvalidGrant) {
		t.Errorf("RefreshDBSC(garbage proof) = %v, want ErrInvalidGrant (revoked as stolen)", err)
	}
	if _, live := e.bindingOf(t, sid); live {
		t.Error("the session is live after a garbage proof, want it revoked")
	}
}

// TestDBSCUnsupportedBrowser: a browser without DBSC ignores the offer
// and keeps today's sessions: unbound, refreshed by cookie.
func TestDBSCUnsupportedBrowser(t *testing.T) {
	e := startWeb(t, nil)
	b := e.dbscBrowser(true)
	dbscLogin(t, b, "ida")
	_, sid := dbscGet(t, b)
	if kind, live := e.bindingOf(t, sid); kind != "" || !live {
		t.Fatalf("session of a browser without DBSC: binding %q, live %v; want unbound", kind, live)
	}
	e.advance(t, accessTTL+2*time.Minute)
	if st, saw := dbscGet(t, b); st != http.StatusOK || saw != sid {
		t.Fatalf("refresh by cookie without DBSC: %d in %q, want 200 in %s", st, saw, sid)
	}
}

// TestDBSCOff: WebConfig.NoDBSC offers nothing and accepts no
// registration.
func TestDBSCOff(t *testing.T) {
	e := startWeb(t, func(c *gate.WebConfig) { c.NoDBSC = true })
	b := e.dbscBrowser(false)
	if resp := dbscLogin(t, b, "jo"); resp.Header.Get("Secure-Session-Registration") != "" {
		t.Errorf("NoDBSC: sign-in offers %q, want no registration", resp.Header.Get("Secure-Session-Registration"))
	}
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, e.gate.URL+"/.tegata/dbsc/register", nil)
	req.Header.Set("Secure-Session-Response", `"a.b.c"`)
	if resp, _, err := b.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("NoDBSC: POST /.tegata/dbsc/register = %v %v, want 404", resp.StatusCode, err)
	}
}

// TestDBSCRegistrationRefused: what a registration must be.
func TestDBSCRegistrationRefused(t *testing.T) {
	e := startWeb(t, nil)
	b := e.dbscBrowser(true) // signs in without registering
	dbscLogin(t, b, "kim")
	_, sid := dbscGet(t, b)
	tests := []struct {
		name   string
		header string
		status int
	}{
		{"no proof", "", http.StatusBadRequest},
		{"not a string", "a.b.c", http.StatusBadRequest},
		{"alg none", `"eyJhbGciOiJub25lIiwidHlwIjoiZGJzYytqd3QifQ.eyJqdGkiOiJ4In0."`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, e.gate.URL+"/.tegata/dbsc/register", nil)
		if tt.header != "" {
			req.Header.Set("Secure-Session-Response", tt.header)
		}
		resp, body, err := b.Do(req)
		if err != nil || resp.StatusCode != tt.status {
			t.Errorf("%s: register = %d %s %v, want %d", tt.name, resp.StatusCode, body, err, tt.status)
		}
	}
	if kind, _ := e.bindingOf(t, sid); kind != "" {
		t.Errorf("refused registrations bound the session (%q)", kind)
	}
	// Registration comes with the sign-in: a session older than the
	// window cannot be bound, even with a good proof over a fresh
	// challenge (which anyone holding the cookies can compute).
	register := func() int {
		t.Helper()
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		c := dbsc.Challenge(b.Cookies()[gate.CookieRefresh], e.clock.Now())
		proof, err := keyproof.Sign(k, dbsc.ProofType, []byte(`{"jti":"`+c+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, e.gate.URL+"/.tegata/dbsc/register", nil)
		req.Header.Set("Secure-Session-Response", dbsc.Quote(proof))
		resp, _, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	e.advance(t, 5*time.Minute+time.Second)
	if st := register(); st != http.StatusForbidden {
		t.Errorf("registration 5 min after sign-in = %d, want 403", st)
	}
	if kind, _ := e.bindingOf(t, sid); kind != "" {
		t.Errorf("a late registration bound the session (%q)", kind)
	}
}

func startWebMetrics(t *testing.T, reg *prometheus.Registry) *webEnv {
	t.Helper()
	e := startWeb(t, nil)
	h, err := gate.New(e.v, gate.Config{Upstream: e.app.url(t), Web: e.web, Logger: e.logs.logger(), Metrics: reg})
	if err != nil {
		t.Fatalf("gate.New: %v", err)
	}
	e.gate.Config.Handler = h
	return e
}

// TestDBSCRegistrationForAnotherSession: within the registration window,
// someone holding a victim's access cookie but a refresh cookie of their
// own session (whose challenge they can answer) cannot bind the victim's
// session to their key: the authority refuses a refresh token of another
// session, and the victim's session stays unbound.
func TestDBSCRegistrationForAnotherSession(t *testing.T) {
	e := startWeb(t, nil)
	victim := e.dbscBrowser(true)
	dbscLogin(t, victim, "vic")
	_, sid := dbscGet(t, victim)
	attacker := e.dbscBrowser(true)
	dbscLogin(t, attacker, "mallory")
	attacker.SetCookies(map[string]string{gate.CookieAccess: victim.Cookies()[gate.CookieAccess]})

	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := dbsc.Challenge(attacker.Cookies()[gate.CookieRefresh], e.clock.Now())
	proof, err := keyproof.Sign(k, dbsc.ProofType, []byte(`{"jti":"`+c+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, e.gate.URL+"/.tegata/dbsc/register", nil)
	req.Header.Set("Secure-Session-Response", dbsc.Quote(proof))
	resp, body, err := attacker.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("register with the victim's access cookie and another session's refresh cookie = %d %s, want 403", resp.StatusCode, body)
	}
	if kind, live := e.bindingOf(t, sid); kind != "" || !live {
		t.Errorf("the victim's session after the attempt: bound %q, live %v; want unbound and live", kind, live)
	}
	if st, saw := dbscGet(t, victim); st != http.StatusOK || saw != sid {
		t.Errorf("the victim: %d in %q; want 200 in %s", st, saw, sid)
	}
}
