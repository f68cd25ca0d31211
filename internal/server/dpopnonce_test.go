package server_test

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
)

// nonceAnswer is what a POST with a DPoP proof got.
type nonceAnswer struct {
	status int
	code   string // the error code, "" on success
	nonce  string // DPoP-Nonce
	tokens client.Tokens
}

// postProof POSTs body to base+path with a DPoP proof for issuer+path
// carrying nonce, as an API key holder (sign-in) or anyone (refresh).
func postProof(t *testing.T, base, issuer, path, apiKey string, key *ecdsa.PrivateKey, nonce string, body any) nonceAnswer {
	t.Helper()
	proof, err := dpop.NewProof(key, "POST", issuer+path, "", nonce, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx(t), "POST", base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("DPoP", proof)
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	a := nonceAnswer{status: res.StatusCode, nonce: res.Header.Get("DPoP-Nonce")}
	var out struct {
		client.Tokens
		Error string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("POST %s: decode the answer: %v", path, err)
	}
	a.code, a.tokens = out.Error, out.Tokens
	return a
}

// TestDPoPNonceAcrossNodes: with --dpop-nonce, sign-in and refresh refuse
// a proof without a current nonce (400 use_dpop_nonce, the nonce in
// DPoP-Nonce) and hand a fresh nonce with every answer; a nonce one node
// issued is good at another node of the cluster (they derive nonces from
// the master key they share), never at a node of another cluster.
func TestDPoPNonceAcrossNodes(t *testing.T) {
	t.Parallel()
	const issuer = "https://auth.test"
	master := base64.StdEncoding.EncodeToString(make([]byte, 32))
	base := server.Config{Addr: "127.0.0.1:0", DB: migrated.Schema(t), Issuer: issuer, DataDir: filepath.Join(t.TempDir(), "d"),
		MasterKey: master, APIKey: authority.NewAPIKey(), FeedKey: authority.NewAPIKey(), Logger: quietLog()}
	base.Authority.DPoPNonce = time.Minute
	a, b := mustStart(t, base), mustStart(t, base)
	defer stop(t, a)
	defer stop(t, b)
	key := newP256(t)
	signIn := client.SessionRequest{Subject: "dora", Device: "cli"}

	first := postProof(t, a.URL, issuer, authority.SessionsPath, base.APIKey, key, "", signIn)
	if first.status != 400 || first.code != authority.CodeUseDPoPNonce || first.nonce == "" {
		t.Fatalf("sign-in with a proof without a nonce = %d %q (DPoP-Nonce %q), want 400 use_dpop_nonce with a nonce", first.status, first.code, first.nonce)
	}
	if bad := postProof(t, a.URL, issuer, authority.SessionsPath, base.APIKey, key, "made-up", signIn); bad.code != authority.CodeUseDPoPNonce {
		t.Errorf("sign-in with a made-up nonce = %d %q, want use_dpop_nonce", bad.status, bad.code)
	}
	created := postProof(t, b.URL, issuer, authority.SessionsPath, base.APIKey, key, first.nonce, signIn)
	if created.status != 201 || created.tokens.TokenType != "DPoP" || created.nonce == "" {
		t.Fatalf("sign-in at node b with node a's nonce = %d %q %+v (DPoP-Nonce %q), want 201, a DPoP session, a nonce", created.status, created.code, created.tokens, created.nonce)
	}
	refresh := map[string]string{"refresh_token": created.tokens.RefreshToken}
	if r := postProof(t, a.URL, issuer, authority.RefreshPath, "", key, "", refresh); r.code != authority.CodeUseDPoPNonce || r.nonce == "" {
		t.Errorf("refresh without a nonce = %d %q (DPoP-Nonce %q), want use_dpop_nonce with a nonce (nothing spent)", r.status, r.code, r.nonce)
	}
	refreshed := postProof(t, a.URL, issuer, authority.RefreshPath, "", key, created.nonce, refresh)
	if refreshed.status != 200 || refreshed.tokens.TokenType != "DPoP" || refreshed.nonce == "" {
		t.Fatalf("refresh at node a with node b's nonce = %d %q, DPoP-Nonce %q; want 200 and a nonce", refreshed.status, refreshed.code, refreshed.nonce)
	}

	// Another cluster (another master key) issues nonces nobody here takes.
	other := start(t, func(c *server.Config) { c.Authority.DPoPNonce = time.Minute })
	foreign := postProof(t, other.URL, other.URL, authority.SessionsPath, other.admin.APIKey, key, "", signIn)
	if foreign.nonce == "" {
		t.Fatal("the other cluster sent no nonce")
	}
	refresh["refresh_token"] = refreshed.tokens.RefreshToken
	if r := postProof(t, b.URL, issuer, authority.RefreshPath, "", key, foreign.nonce, refresh); r.code != authority.CodeUseDPoPNonce {
		t.Errorf("refresh with another cluster's nonce = %d %q, want use_dpop_nonce", r.status, r.code)
	}
}

// countingTransport counts the requests it sends.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestDPoPNonceTokenSource: a TokenSource refreshing a DPoP-bound session
// at an authority that asks for nonces retries once with the nonce it is
// sent, then signs its next refresh with the nonce of the last answer, so
// it is refused no more. Without --dpop-nonce no answer carries a nonce.
func TestDPoPNonceTokenSource(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.Authority.DPoPNonce = time.Minute })
	key := newP256(t)
	jkt, _ := client.Thumbprint(key.Public())
	tok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "dora", Device: "cli", DPoPJKT: jkt})
	if err != nil {
		t.Fatal(err)
	}
	counter := &countingTransport{}
	c := &client.Client{BaseURL: e.URL, HTTPClient: &http.Client{Transport: counter}}
	// Early longer than the access token lives: every Token refreshes.
	ts := c.TokenSource(tok, client.TokenSourceOptions{DPoP: key, Early: 24 * time.Hour})
	for i, want := range []int64{2, 1} {
		counter.n.Store(0)
		if _, err := ts.Token(ctx(t)); err != nil {
			t.Fatalf("Token() #%d = %v", i, err)
		}
		if got := counter.n.Load(); got != want {
			t.Errorf("Token() #%d made %d requests, want %d", i, got, want)
		}
	}

	off := start(t, nil)
	created := postProof(t, off.URL, off.URL, authority.SessionsPath, off.admin.APIKey, key, "", client.SessionRequest{Subject: "dora"})
	if created.status != 201 || created.nonce != "" {
		t.Errorf("sign-in with a proof, nonces off = %d %q, DPoP-Nonce %q; want 201 and none", created.status, created.code, created.nonce)
	}
}
