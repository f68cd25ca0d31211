package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/testtime"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m))
}

// env is an authority on embedded SQLite with its console, on a real
// loopback port.
type env struct {
	*server.Running
	admin *client.Client
	clock *testtime.Clock
}

func start(t testing.TB, tune func(*server.Config)) *env {
	t.Helper()
	clk := testtime.NewClock(time.Now())
	cfg := server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Clock: clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if tune != nil {
		tune(&cfg)
	}
	r, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &env{Running: r, clock: clk, admin: &client.Client{BaseURL: r.URL, APIKey: r.APIKey}}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// browser is a console user agent: it keeps cookies as a browser does on
// http://127.0.0.1 (Secure ones included, which net/http/cookiejar would
// only send over https), follows no redirect, and sends the headers a
// same-origin browser sends.
type browser struct {
	t       testing.TB
	base    string // scheme://host
	cookies map[string]string
	hc      *http.Client
	csrf    string
}

func newBrowser(t testing.TB, consoleURL string) *browser {
	u, err := url.Parse(consoleURL)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: u.Scheme + "://" + u.Host, cookies: map[string]string{},
		hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// response is an answer, its body read.
type response struct {
	*http.Response
	body string
}

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	res, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	buf, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	if m := csrfRE.FindStringSubmatch(string(buf)); m != nil {
		b.csrf = m[1]
	}
	return response{Response: res, body: string(buf)}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) get(path string) response { b.t.Helper(); return b.do("GET", path, nil, nil) }

// post submits a form with the page's CSRF token.
func (b *browser) post(path string, form url.Values) response {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	return b.do("POST", path, form, nil)
}

// signIn signs in with key and returns the answer.
func (b *browser) signIn(key string) response {
	b.t.Helper()
	return b.do("POST", "/console/login", url.Values{"key": {key}, "next": {"/console/"}}, nil)
}

// signedIn returns a browser signed in with the admin key, on the
// overview page (so it holds a CSRF token).
func (e *env) signedIn(t testing.TB) *browser {
	t.Helper()
	b := newBrowser(t, e.ConsoleURL)
	if res := b.signIn(e.APIKey); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in = %d, want 303\n%s", res.StatusCode, res.body)
	}
	if res := b.get("/console/"); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /console/ = %d, want 200\n%s", res.StatusCode, res.body)
	}
	return b
}

func wantStatus(t testing.TB, what string, res response, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("%s = %d, want %d\n%.2000s", what, res.StatusCode, want, res.body)
	}
}
