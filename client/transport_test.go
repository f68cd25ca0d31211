package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/verifier"
)

// dpopSource signs a device in with a fresh P-256 key and returns its
// TokenSource.
func dpopSource(t *testing.T) *client.TokenSource {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := client.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	admin := &client.Client{BaseURL: authorityURL, APIKey: adminKey}
	tok, err := admin.CreateSession(context.Background(), client.SessionRequest{Subject: "cli-user", DPoPJKT: jkt})
	if err != nil {
		t.Fatalf("CreateSession(dpop_jkt) = %v", err)
	}
	return (&client.Client{BaseURL: authorityURL}).TokenSource(tok, client.TokenSourceOptions{DPoP: key})
}

// nonceVerifier follows the test authority and asks DPoP proofs for its
// own nonces, as an app with Config.DPoPNonce or tegata gate --dpop-nonce.
func nonceVerifier(t *testing.T, publicURL string) *verifier.Verifier {
	t.Helper()
	v, err := verifier.New(context.Background(), verifier.Config{Authorities: []string{authorityURL}, APIKey: adminKey,
		DPoPNonce: time.Minute, PublicURL: publicURL, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := v.WaitReady(context.Background()); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return v
}

// app records the requests that reach the protected handler.
type app struct {
	mu     sync.Mutex
	bodies []string
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.bodies = append(a.bodies, string(b))
	a.mu.Unlock()
}

func (a *app) got() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.bodies...)
}

// serve starts a server whose handler is made knowing its own URL, and
// counts every request that arrives, refused or not.
func serve(t *testing.T, handler func(url string) http.Handler) (string, *atomic.Int64) {
	t.Helper()
	s := httptest.NewUnstartedServer(nil)
	u := "http://" + s.Listener.Addr().String()
	var n atomic.Int64
	h := handler(u)
	s.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	})
	s.Start()
	t.Cleanup(s.Close)
	return u, &n
}

// TestTransportDPoPNonce: a client calling an app that requires
// resource-server nonces (the verifier middleware with DPoPNonce, or a
// proxying gate with a nonce verifier) is refused once with
// use_dpop_nonce, retries by itself with the same body, and then signs
// the origin's nonce into its next proofs, through Transport or Authorize.
func TestTransportDPoPNonce(t *testing.T) {
	for _, tt := range []struct {
		name  string
		front func(t *testing.T, a *app) (string, *atomic.Int64)
	}{
		{"middleware", func(t *testing.T, a *app) (string, *atomic.Int64) {
			return serve(t, func(u string) http.Handler { return nonceVerifier(t, u).Middleware(a) })
		}},
		{"gate proxy", func(t *testing.T, a *app) (string, *atomic.Int64) {
			up := httptest.NewServer(a)
			t.Cleanup(up.Close)
			upURL, _ := url.Parse(up.URL)
			return serve(t, func(u string) http.Handler {
				g, err := gate.New(nonceVerifier(t, u), gate.Config{Upstream: upURL, PublicURL: u,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					t.Fatalf("gate.New: %v", err)
				}
				return g
			})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{}
			base, arrived := tt.front(t, a)
			ts := dpopSource(t)
			hc := &http.Client{Transport: ts.Transport(nil)}
			post := func(body io.Reader) *http.Response {
				t.Helper()
				req, _ := http.NewRequest("POST", base+"/orders", body)
				res, err := hc.Do(req)
				if err != nil {
					t.Fatalf("POST /orders: %v", err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res
			}
			if res := post(strings.NewReader("first order")); res.StatusCode != 200 || arrived.Load() != 2 {
				t.Fatalf("first POST = %d after %d requests, want 200 after 2 (refused once for the nonce, then retried)", res.StatusCode, arrived.Load())
			}
			if got := a.got(); len(got) != 1 || got[0] != "first order" {
				t.Fatalf("the app received %q, want the body once: [first order]", got)
			}
			if res := post(strings.NewReader("second")); res.StatusCode != 200 || arrived.Load() != 3 {
				t.Errorf("second POST = %d after %d requests in all, want 200 with no retry (3)", res.StatusCode, arrived.Load())
			}
			req, _ := http.NewRequest("GET", base+"/orders", nil)
			if err := ts.Authorize(req); err != nil {
				t.Fatal(err)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 || arrived.Load() != 4 {
				t.Errorf("GET signed by Authorize = %d, want 200 with the nonce the Transport learned", res.StatusCode)
			}

			// A body that cannot be read twice: the refusal comes back.
			fresh := dpopSource(t)
			hc.Transport = fresh.Transport(nil)
			before := arrived.Load()
			res = post(io.NopCloser(strings.NewReader("unreplayable")))
			if res.StatusCode != 401 || arrived.Load() != before+1 ||
				!strings.Contains(res.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
				t.Errorf("POST of a one-shot body without a nonce = %d %q after %d requests, want 401 use_dpop_nonce after 1",
					res.StatusCode, res.Header.Get("WWW-Authenticate"), arrived.Load()-before)
			}
			if res := post(io.NopCloser(strings.NewReader("sent again"))); res.StatusCode != 200 {
				t.Errorf("the caller's own second send = %d, want 200 with the nonce of the refusal", res.StatusCode)
			}
		})
	}
}

// TestTransportDPoPNonceNoLoop: a server that refuses every nonce is asked
// twice, not forever, and its last refusal is returned; one that asks
// again for the nonce the proof carried is not asked again. Each retry's
// proof carries the nonce the refusal sent.
func TestTransportDPoPNonceNoLoop(t *testing.T) {
	for _, tt := range []struct {
		name  string
		nonce func(n int64) string
		next  int64 // requests in all after a second GET
	}{
		{"a new nonce every time", func(n int64) string { return fmt.Sprint("n", n) }, 4},
		{"the same nonce again", func(int64) string { return "same" }, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var carried []string // the nonce of each request's proof
			base, arrived := serve(t, func(string) http.Handler {
				var n atomic.Int64
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					carried = append(carried, proofNonce(t, r.Header.Get("DPoP")))
					mu.Unlock()
					w.Header().Set("DPoP-Nonce", tt.nonce(n.Add(1)))
					w.Header().Set("WWW-Authenticate", `DPoP algs="ES256", error="use_dpop_nonce"`)
					w.WriteHeader(http.StatusUnauthorized)
				})
			})
			hc := &http.Client{Transport: dpopSource(t).Transport(nil)}
			get := func() *http.Response {
				res, err := hc.Get(base + "/x")
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res
			}
			if res := get(); res.StatusCode != 401 || arrived.Load() != 2 || res.Header.Get("DPoP-Nonce") != tt.nonce(2) {
				t.Errorf("GET = %d (DPoP-Nonce %q) after %d requests, want the 401 of the retry, after 2",
					res.StatusCode, res.Header.Get("DPoP-Nonce"), arrived.Load())
			}
			get()
			mu.Lock()
			defer mu.Unlock()
			want := []string{"", tt.nonce(1), tt.nonce(2), tt.nonce(3)}[:tt.next]
			if fmt.Sprint(carried) != fmt.Sprint(want) {
				t.Errorf("proofs carried nonces %q, want %q", carried, want)
			}
		})
	}
}

// proofNonce is the nonce claim of a DPoP proof, "" if it has none.
func proofNonce(t *testing.T, proof string) string {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Errorf("DPoP header %q is not a JWS", proof)
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Nonce string `json:"nonce"`
	}
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		t.Errorf("DPoP proof payload: %v", err)
	}
	return c.Nonce
}

// TestTransportConcurrent: requests sent at once through one Transport
// (each may learn the nonce and retry) all pass; run with -race.
func TestTransportConcurrent(t *testing.T) {
	a := &app{}
	base, _ := serve(t, func(u string) http.Handler { return nonceVerifier(t, u).Middleware(a) })
	hc := &http.Client{Transport: dpopSource(t).Transport(nil)}
	const n = 8
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			res, err := hc.Post(base+"/orders", "text/plain", strings.NewReader("order"))
			if err != nil {
				t.Error(err)
				codes <- 0
				return
			}
			res.Body.Close()
			codes <- res.StatusCode
		}()
	}
	for i := 0; i < n; i++ {
		if c := <-codes; c != 200 {
			t.Errorf("concurrent POST = %d, want 200", c)
		}
	}
	if got := len(a.got()); got != n {
		t.Errorf("the app received %d requests, want %d", got, n)
	}
}
