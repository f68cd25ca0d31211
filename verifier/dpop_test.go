package verifier

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/internal/keyproof"
	"github.com/tegata-dev/tegata/internal/revocation"
)

const testAPI = "https://api.example/orders"

type dpopKey struct {
	priv ed25519.PrivateKey
	jkt  string
}

func newDPoPKey(t testing.TB) dpopKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyproof.PublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return dpopKey{priv: priv, jkt: k.Thumbprint}
}

func (k dpopKey) proof(t testing.TB, method, url, tok string, now time.Time) string {
	t.Helper()
	p, err := dpop.NewProof(k.priv, method, url, tok, "", now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVerifyDPoP pins each way a DPoP-bound token may be presented.
func TestVerifyDPoP(t *testing.T) {
	l := newLocal(t, 0)
	key, other := newDPoPKey(t), newDPoPKey(t)
	c := l.claims("alice")
	c.JKT = key.jkt
	bound := sign(t, l.key, c)
	plain := sign(t, l.key, l.claims("bob"))
	now := l.clock.Now()
	ctx := context.Background()
	replayed := key.proof(t, "GET", testAPI, bound, now)
	if _, err := l.v.VerifyDPoP(ctx, bound, replayed, "GET", testAPI); err != nil {
		t.Fatalf("VerifyDPoP(valid) = %v", err)
	}
	tests := []struct {
		name       string
		tok, proof string
		method     string
		url        string
		want       error
	}{
		{"fresh proof, query ignored", bound, key.proof(t, "GET", testAPI, bound, now), "GET", testAPI + "?page=2", nil},
		{"replayed proof", bound, replayed, "GET", testAPI, ErrDPoP},
		{"proof for another URL", bound, key.proof(t, "GET", "https://api.example/admin", bound, now), "GET", testAPI, ErrDPoP},
		{"proof for another method", bound, key.proof(t, "POST", testAPI, bound, now), "GET", testAPI, ErrDPoP},
		{"proof by another key", bound, other.proof(t, "GET", testAPI, bound, now), "GET", testAPI, ErrDPoP},
		{"proof for another token", bound, key.proof(t, "GET", testAPI, plain, now), "GET", testAPI, ErrDPoP},
		{"stale proof", bound, key.proof(t, "GET", testAPI, bound, now.Add(-2*time.Minute)), "GET", testAPI, ErrDPoP},
		{"no proof", bound, "", "GET", testAPI, ErrDPoP},
		{"unbound token with DPoP", plain, key.proof(t, "GET", testAPI, plain, now), "GET", testAPI, ErrDPoP},
		{"forged token", bound[:len(bound)-4] + "AAAA", key.proof(t, "GET", testAPI, bound, now), "GET", testAPI, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.v.VerifyDPoP(ctx, tt.tok, tt.proof, tt.method, tt.url)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifyDPoP(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
	if _, err := l.v.Verify(ctx, bound); !errors.Is(err, ErrDPoP) {
		t.Errorf("Verify(bound token as Bearer) = %v, want ErrDPoP", err)
	}
	if err := l.set.Apply(revocation.Entry{Seq: 1, Kind: revocation.KindSession, Session: c.SessionID,
		ExpiresAt: l.clock.In(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.v.VerifyDPoP(ctx, bound, key.proof(t, "GET", testAPI, bound, now), "GET", testAPI); !errors.Is(err, ErrRevoked) {
		t.Errorf("VerifyDPoP(revoked session) = %v, want ErrRevoked", err)
	}
}

// TestMiddlewareDPoP sends requests through the middleware: the DPoP
// scheme with a proof for the URL the client used (PublicURL behind a
// proxy), and RFC 9449's answers to what is refused.
func TestMiddlewareDPoP(t *testing.T) {
	l := newLocal(t, 0)
	l.v.cfg.PublicURL = "https://api.example"
	key := newDPoPKey(t)
	c := l.claims("alice")
	c.JKT = key.jkt
	bound := sign(t, l.key, c)
	h := l.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, _ := FromContext(r.Context())
		_, _ = w.Write([]byte(cl.Subject()))
	}))
	send := func(auth, proof string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://10.0.0.7:8080/orders?page=2", nil) // as the proxy forwards it
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if proof != "" {
			r.Header.Set("DPoP", proof)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	now := l.clock.Now()
	if w := send("DPoP "+bound, key.proof(t, "GET", testAPI, bound, now)); w.Code != 200 || w.Body.String() != "alice" {
		t.Fatalf("DPoP request = %d %s, want 200 alice", w.Code, w.Body)
	}
	for _, tt := range []struct{ name, auth, proof string }{
		{"bound token as Bearer", "Bearer " + bound, ""},
		{"no DPoP header", "DPoP " + bound, ""},
		{"proof for the internal URL", "DPoP " + bound, key.proof(t, "GET", "http://10.0.0.7:8080/orders", bound, now)},
	} {
		w := send(tt.auth, tt.proof)
		if ch := w.Header().Get("WWW-Authenticate"); w.Code != 401 || !strings.HasPrefix(ch, "DPoP ") || !strings.Contains(ch, `error="invalid_dpop_proof"`) ||
			!strings.Contains(w.Body.String(), `"invalid_dpop_proof"`) {
			t.Errorf("%s = %d, WWW-Authenticate %q, body %s; want 401 invalid_dpop_proof with a DPoP challenge", tt.name, w.Code, ch, w.Body)
		}
	}
}

// TestDPoPNonce: with DPoPNonce a proof without the verifier's nonce is
// answered use_dpop_nonce and the nonce, which a new proof then carries.
func TestDPoPNonce(t *testing.T) {
	l := newLocal(t, 0)
	l.v.nonces = dpop.NewNonces(time.Minute)
	l.v.proofs = dpop.NewChecker(dpop.Config{Nonces: l.v.nonces})
	l.v.cfg.PublicURL = "https://api.example"
	key := newDPoPKey(t)
	c := l.claims("alice")
	c.JKT = key.jkt
	bound := sign(t, l.key, c)
	h := l.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	send := func(proof string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "DPoP "+bound)
		r.Header.Set("DPoP", proof)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := send(key.proof(t, "GET", testAPI, bound, l.clock.Now()))
	nonce := w.Header().Get("DPoP-Nonce")
	if w.Code != 401 || nonce == "" || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		t.Fatalf("proof without nonce = %d, %v; want 401 use_dpop_nonce with DPoP-Nonce", w.Code, w.Header())
	}
	p, err := dpop.NewProof(key.priv, "GET", testAPI, bound, nonce, l.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if w := send(p); w.Code != 200 {
		t.Errorf("proof with the nonce = %d %s, want 200", w.Code, w.Body)
	}
}

// TestMiddlewareDPoPHost: a proof captured for service A, replayed at
// service B (which accepts the same tokens) with A's name in Host, is
// refused: with PublicURL the proof must name B, and without it the
// middleware refuses DPoP requests (and says why in the log) rather than
// believe the Host the client wrote.
func TestMiddlewareDPoPHost(t *testing.T) {
	key := newDPoPKey(t)
	for _, tt := range []struct {
		name, publicURL string
		bPasses         bool
	}{
		{"PublicURL of B", "https://b.example", true},
		{"no PublicURL", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLocal(t, 0)
			var logs strings.Builder
			l.v.log = slog.New(slog.NewTextHandler(&logs, nil))
			l.v.cfg.PublicURL = tt.publicURL
			c := l.claims("alice")
			c.JKT = key.jkt
			bound := sign(t, l.key, c)
			h := l.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			send := func(host, url string) *httptest.ResponseRecorder {
				r := httptest.NewRequest("GET", "https://"+host+"/orders", nil)
				r.Header.Set("Authorization", "DPoP "+bound)
				r.Header.Set("DPoP", key.proof(t, "GET", url, bound, l.clock.Now()))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			if w := send("a.example", "https://a.example/orders"); w.Code != 401 ||
				!strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
				t.Errorf("proof for A at B, Host a.example = %d %q, want 401 invalid_dpop_proof", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			if w := send("b.example", "https://b.example/orders"); (w.Code == 200) != tt.bPasses {
				t.Errorf("proof for B at B = %d, want accepted %v", w.Code, tt.bPasses)
			}
			if !tt.bPasses && !strings.Contains(logs.String(), "Config.PublicURL is not set") {
				t.Errorf("log = %q, want the missing Config.PublicURL named", logs.String())
			}
		})
	}
}
