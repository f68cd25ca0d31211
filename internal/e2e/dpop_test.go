package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/verifier"
)

// TestDPoPInterop drives a DPoP client tegata did not write (panva's dpop
// package on npm, pinned in testdata/interop) against a real authority and
// an app behind a tegata gate: it signs in with a proof, calls the app,
// refreshes; the same token without a proof, as a Bearer token, with a
// proof for another URL, a replayed proof or another key's proof is
// refused, and a refresh with another key ends the session.
func TestDPoPInterop(t *testing.T) {
	t.Parallel()
	node := nodeInterop(t)
	r, err := server.Start(context.Background(), server.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{Authorities: []string{r.URL}, APIKey: r.APIKey, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(app.Close)
	gw := httptest.NewUnstartedServer(nil)
	h, err := gate.New(v, gate.Config{Upstream: mustURL(t, app.URL), PublicURL: "http://" + gw.Listener.Addr().String(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	gw.Config.Handler = h
	gw.Start()
	t.Cleanup(gw.Close)

	for _, alg := range []string{"ES256", "Ed25519"} {
		t.Run(alg, func(t *testing.T) {
			type call struct {
				Status    int    `json:"status"`
				Challenge string `json:"challenge"`
				TokenType string `json:"tokenType"`
				Error     string `json:"error"`
			}
			var out map[string]call
			hits.Store(0)
			runNode(t, node, &out, "dpop.mjs", r.URL, r.APIKey, gw.URL+"/orders", alg)
			want := func(name string, status int, challenge string) {
				c := out[name]
				if c.Status != status || !strings.Contains(c.Challenge, challenge) {
					t.Errorf("%s: %d %q, want %d with %q", name, c.Status, c.Challenge, status, challenge)
				}
			}
			if out["signIn"].Status != 201 || out["signIn"].TokenType != "DPoP" {
				t.Fatalf("sign-in with a proof = %+v, want 201 and token_type DPoP", out["signIn"])
			}
			want("withProof", 200, "")
			for _, refused := range []string{"replayed", "noProof", "asBearer", "otherURL", "otherKey"} {
				want(refused, 401, `DPoP algs=`)
			}
			if out["refresh"].Status != 200 || out["refresh"].TokenType != "DPoP" {
				t.Errorf("refresh with a proof = %+v, want 200 DPoP", out["refresh"])
			}
			want("afterRefresh", 200, "")
			if out["thiefRefresh"].Status != 400 || out["thiefRefresh"].Error != "invalid_dpop_proof" {
				t.Errorf("refresh with another key = %+v, want 400 invalid_dpop_proof", out["thiefRefresh"])
			}
			admin := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
			if live, err := admin.Sessions(ctx, "node-dpop"); err != nil || len(live) != 0 {
				t.Errorf("Sessions(node-dpop) after the thief's refresh = %+v, %v; want none live", live, err)
			}
			if n := hits.Load(); n != 2 {
				t.Errorf("the app was reached %d times, want the 2 accepted calls", n)
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
