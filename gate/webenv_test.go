package gate_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
	authn "github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/verifier"
)

// offsetClock is the real clock moved forward by what a test adds, shared
// by the authority, the verifier and the gate so tokens can be made to
// expire without waiting; a jump fires the timers it makes due (the
// verifier's lease renewal among them).
type offsetClock = testtime.Running

// webEnv is an authority, a verifier following it with a gate API key, an
// app that does what each request's Test-* headers ask, and the gate in
// front of the app with web sessions.
type webEnv struct {
	a       *authority
	clock   *offsetClock
	v       *verifier.Verifier
	web     *gate.Web
	gate    *httptest.Server
	app     *webApp
	gateKey string
	logs    *logBuffer
}

const accessTTL = 15 * time.Minute

// startWeb runs the test in parallel with the other web tests: each has
// an authority, a verifier, an app and a gate of its own.
func startWeb(t *testing.T, tune func(*gate.WebConfig)) *webEnv {
	t.Helper()
	t.Parallel()
	e := &webEnv{clock: testtime.NewRunning(), logs: &logBuffer{}}
	r, err := server.Start(testContext(t), server.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: quiet(),
		Clock: e.clock, Authority: authn.Config{AccessTTL: accessTTL},
	})
	if err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	e.a = &authority{Running: r, admin: &client.Client{BaseURL: r.URL, APIKey: r.APIKey}}
	t.Cleanup(func() { e.a.stop(t) })
	k, err := e.a.admin.CreateAPIKey(testContext(t), client.APIKeyRequest{Name: "web", Role: authn.RoleGate})
	if err != nil {
		t.Fatalf("CreateAPIKey(gate): %v", err)
	}
	e.gateKey = k.Key
	e.v = newVerifier(t, r.URL, k.Key, e.logs.logger(), func(c *verifier.Config) { c.Clock = e.clock })
	waitReady(t, e.v)
	cfg := gate.WebConfig{
		Authority: &client.Client{BaseURL: r.URL, APIKey: k.Key},
		Public:    []string{"/assets/", "/about"},
		Logger:    e.logs.logger(),
	}
	cfg.Clock = e.clock
	if tune != nil {
		tune(&cfg)
	}
	e.web, err = gate.NewWeb(e.v, cfg)
	if err != nil {
		t.Fatalf("NewWeb: %v", err)
	}
	e.app = startWebApp(t)
	gcfg := gate.Config{Upstream: e.app.url(t), Web: e.web, Logger: e.logs.logger()}
	gcfg.Clock = e.clock
	h, err := gate.New(e.v, gcfg)
	if err != nil {
		t.Fatalf("gate.New: %v", err)
	}
	e.gate = httptest.NewServer(h)
	t.Cleanup(e.gate.Close)
	return e
}

// advance moves every clock forward and waits until the verifier trusts
// its state again (a jump makes the last heartbeat look old).
func (e *webEnv) advance(t *testing.T, d time.Duration) {
	t.Helper()
	e.clock.Add(d)
	waitReady(t, e.v)
}

// webApp is the upstream: it echoes the request it saw, and answers with
// the X-Tegata-Login/-Logout headers and the status its Test-* request
// headers ask for.
type webApp struct {
	*httptest.Server
	hits atomic.Int64
}

// appSaw is what webApp answers.
type appSaw struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Header http.Header `json:"header"`
}

func startWebApp(t *testing.T) *webApp {
	app := &webApp{}
	app.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.hits.Add(1)
		if v := r.Header.Get("Test-Login"); v != "" {
			w.Header().Set(gate.HeaderLogin, v)
		}
		if v := r.Header.Get("Test-Logout"); v != "" {
			w.Header().Set(gate.HeaderLogout, v)
		}
		status := http.StatusOK
		if s := r.Header.Get("Test-Status"); s != "" {
			status, _ = strconv.Atoi(s)
			w.Header().Set("Location", "/home")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "app=1; Path=/")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(appSaw{r.Method, r.URL.Path, r.Header})
	}))
	t.Cleanup(app.Close)
	return app
}

// browser keeps cookies the way a browser does for one origin, without
// following redirects, and sends what browsers send on a navigation.
type browser struct {
	t   *testing.T
	e   *webEnv
	ua  string
	mu  sync.Mutex
	jar map[string]string
}

const firefoxUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0"

func (e *webEnv) browser(t *testing.T) *browser {
	return &browser{t: t, e: e, ua: firefoxUA, jar: map[string]string{}}
}

// reply is an answer with its Set-Cookie headers parsed.
type reply struct {
	answer
	cookies map[string]*http.Cookie
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// send makes a request from the page's own origin (Sec-Fetch-Site:
// same-origin) unless hdr says otherwise; nav makes it a navigation
// (Accept: text/html).
func (b *browser) send(method, path string, nav bool, hdr http.Header) reply {
	b.t.Helper()
	req, err := http.NewRequestWithContext(testContext(b.t), method, b.e.gate.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("User-Agent", b.ua)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Accept", "*/*")
	if nav {
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	}
	b.mu.Lock()
	for name, value := range b.jar {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	b.mu.Unlock()
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	got := reply{answer: answer{resp.StatusCode, resp.Header, body}, cookies: map[string]*http.Cookie{}}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range resp.Cookies() {
		got.cookies[c.Name] = c
		if c.MaxAge < 0 {
			delete(b.jar, c.Name)
		} else {
			b.jar[c.Name] = c.Value
		}
	}
	return got
}

func (b *browser) cookie(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.jar[name]
}

func (b *browser) setCookie(name, value string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if value == "" {
		delete(b.jar, name)
		return
	}
	b.jar[name] = value
}

// login signs the browser in through the app's X-Tegata-Login answer.
func (b *browser) login(subject string, claims map[string]any) reply {
	b.t.Helper()
	l, err := json.Marshal(gate.Login{Subject: subject, Claims: claims})
	if err != nil {
		b.t.Fatal(err)
	}
	got := b.send("POST", "/login", true, http.Header{"Test-Login": {string(l)}, "Test-Status": {"303"}})
	if got.status != http.StatusSeeOther || b.cookie(gate.CookieAccess) == "" || b.cookie(gate.CookieRefresh) == "" {
		b.t.Fatalf("sign-in as %q = %d %s, cookies %v; want 303 and both cookies", subject, got.status, got.body, got.cookies)
	}
	return got
}

// saw decodes what the app saw.
func (r reply) saw(t *testing.T) appSaw {
	t.Helper()
	var s appSaw
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatalf("app answer %d %q: %v", r.status, r.body, err)
	}
	return s
}

// sessionIDs lists the subject's live session ids at the authority.
func (e *webEnv) sessionIDs(t *testing.T, subject string) []string {
	t.Helper()
	list, err := e.a.admin.Sessions(testContext(t), subject)
	if err != nil {
		t.Fatalf("Sessions(%q): %v", subject, err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return ids
}

// claimsOf verifies an access token with the gate's verifier.
func (e *webEnv) claimsOf(t *testing.T, at string) map[string]any {
	t.Helper()
	c, err := e.v.Verify(testContext(t), at)
	if err != nil {
		t.Fatalf("Verify(access cookie): %v", err)
	}
	out := map[string]any{"sub": c.Subject(), "sid": c.SessionID()}
	for k, v := range c.Copy().Extra {
		out[k] = v
	}
	return out
}

func (app *webApp) url(t *testing.T) *url.URL { return parseURL(t, app.URL) }
