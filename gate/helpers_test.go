package gate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/verifier"
)

// logBuffer collects log output so tests can check that no token leaks.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// authority is an in-process authority on embedded SQLite in a temp dir,
// on a real loopback port.
type authority struct {
	*server.Running
	admin    *client.Client
	stopOnce sync.Once
}

// stop shuts the authority down (once, whether called by a test or at
// cleanup).
func (a *authority) stop(t *testing.T) {
	a.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

func startAuthority(t *testing.T) *authority {
	t.Helper()
	r, err := server.Start(testContext(t), server.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(),
		Logger: quiet(),
	})
	if err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	a := &authority{Running: r, admin: &client.Client{BaseURL: r.URL, APIKey: r.APIKey}}
	t.Cleanup(func() { a.stop(t) })
	return a
}

// signIn creates a session and returns its tokens.
func (a *authority) signIn(t *testing.T, subject string, claims map[string]any) client.Tokens {
	t.Helper()
	tok, err := a.admin.CreateSession(testContext(t), client.SessionRequest{Subject: subject, Device: "test", Claims: claims})
	if err != nil {
		t.Fatalf("CreateSession(%q): %v", subject, err)
	}
	return tok
}

func (a *authority) revoke(t *testing.T, sid string) {
	t.Helper()
	if _, err := a.admin.RevokeSession(testContext(t), client.SessionRevocation{SessionID: sid, Reason: "test"}); err != nil {
		t.Fatalf("RevokeSession(%q): %v", sid, err)
	}
}

// newVerifier follows the authority at base (which may be a proxy in front
// of it). tune may change the config.
func newVerifier(t *testing.T, base, apiKey string, log *slog.Logger, tune func(*verifier.Config)) *verifier.Verifier {
	t.Helper()
	if log == nil {
		log = quiet()
	}
	cfg := verifier.Config{Authorities: []string{base}, APIKey: apiKey, Audience: "tegata", Logger: log}
	if tune != nil {
		tune(&cfg)
	}
	v, err := verifier.New(testContext(t), cfg)
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func waitReady(t *testing.T, v *verifier.Verifier) {
	t.Helper()
	if err := v.WaitReady(testContext(t)); err != nil {
		t.Fatalf("WaitReady: %v (state %+v)", err, v.State())
	}
}

// quiet is a logger for tests that do not look at logs.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startGate serves gate.New(v, cfg) on a loopback port.
func startGate(t *testing.T, v *verifier.Verifier, cfg gate.Config) *httptest.Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	h, err := gate.New(v, cfg)
	if err != nil {
		t.Fatalf("gate.New: %v", err)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// echo is an upstream app that answers with the request it received.
type echo struct {
	*httptest.Server
	hits atomic.Int64
}

// echoed is what echo answers.
type echoed struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
	Header http.Header `json:"header"`
	URI    string      `json:"uri"` // the request target as sent
}

func startEcho(t *testing.T) *echo {
	t.Helper()
	e := &echo{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{r.Method, r.URL.Path, r.URL.RawQuery, r.Header, r.RequestURI})
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *echo) url(t *testing.T) *url.URL { return parseURL(t, e.URL) }

func parseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// feedGate is a reverse proxy in front of an authority that keeps every
// feed stream silent until release is called (the stream opens, so
// verifier.New returns, but no event comes), so that a verifier behind it
// stays out of sync for as long as a test wants. On release the silent
// streams end and the verifier reconnects through to the authority.
type feedGate struct {
	*httptest.Server
	once    sync.Once
	release chan struct{}
}

func startFeedGate(t *testing.T, authorityURL string) *feedGate {
	t.Helper()
	target, err := url.Parse(authorityURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	fg := &feedGate{release: make(chan struct{})}
	fg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/feed" {
			select {
			case <-fg.release:
			default:
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusOK)
				_ = http.NewResponseController(w).Flush()
				select {
				case <-fg.release:
				case <-r.Context().Done():
				}
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(fg.Close)
	return fg
}

func (fg *feedGate) open() { fg.once.Do(func() { close(fg.release) }) }

// answer is a response read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends method to u with the given headers and reads the answer.
func do(t *testing.T, method, u string, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, u, err)
	}
	return answer{resp.StatusCode, resp.Header, body}
}

// doRaw sends a GET whose request target is written exactly as given (no
// client-side cleaning or re-encoding) and reads the answer.
func doRaw(t *testing.T, base, target string, header http.Header) answer {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET " + target + " HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: close\r\n"
	for k, vs := range header {
		for _, v := range vs {
			req += k + ": " + v + "\r\n"
		}
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", target, err)
	}
	return answer{resp.StatusCode, resp.Header, body}
}

func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// errorDescription returns the error_description of a JSON error body.
func (a answer) errorDescription(t *testing.T) string {
	t.Helper()
	var b struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(a.body, &b); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	return b.Description
}

// eventually waits until check returns true (testtime.EventuallyTrue).
func eventually(t *testing.T, deadline time.Duration, what string, check func() bool) {
	t.Helper()
	testtime.EventuallyTrue(t, deadline, what, check)
}
