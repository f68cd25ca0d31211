package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/verifier"
)

func newP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDPoPSession signs a device in with its DPoP key's thumbprint, uses
// and refreshes its tokens with proofs, and shows that a refresh without a
// proof is refused while one with a proof of another key ends the session.
func TestDPoPSession(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	key := newP256(t)
	jkt, err := client.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "dora", Device: "cli", DPoPJKT: jkt})
	if err != nil {
		t.Fatalf("CreateSession(dpop_jkt) = %v", err)
	}
	if tok.TokenType != "DPoP" {
		t.Errorf("CreateSession(dpop_jkt).TokenType = %q, want DPoP", tok.TokenType)
	}
	v := e.Authority.Verifier()
	if _, err := v.Verify(ctx(t), tok.AccessToken); err != nil {
		t.Errorf("the authority's own verifier (introspection) refuses the bound token: %v", err)
	}
	in, err := e.admin.Introspect(ctx(t), tok.AccessToken)
	if err != nil || !in.Active {
		t.Errorf("Introspect(bound token) = %+v, %v; want active", in, err)
	}
	ireq, _ := http.NewRequestWithContext(ctx(t), "POST", e.URL+"/v1/introspect", strings.NewReader("token="+tok.AccessToken))
	ireq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ireq.Header.Set("Authorization", "Bearer "+e.admin.APIKey)
	ires, err := http.DefaultClient.Do(ireq)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	err = json.NewDecoder(ires.Body).Decode(&raw)
	ires.Body.Close()
	if cnf, _ := raw["cnf"].(map[string]any); err != nil || cnf["jkt"] != jkt {
		t.Errorf("introspection = %v, %v; want cnf.jkt %s", raw, err, jkt)
	}

	// Without a proof, a bound session's refresh is refused and nothing
	// is spent.
	_, err = e.anon.Refresh(ctx(t), tok.RefreshToken)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != authority.CodeInvalidDPoPProof {
		t.Fatalf("Refresh(bound, no proof) = %v, want invalid_dpop_proof", err)
	}
	ts := e.anon.TokenSource(client.Tokens{RefreshToken: tok.RefreshToken}, client.TokenSourceOptions{DPoP: key})
	at, err := ts.Token(ctx(t))
	if err != nil {
		t.Fatalf("TokenSource(DPoP).Token = %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx(t), "GET", "https://api.example/orders", nil)
	if err := ts.Authorize(req); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Authorization") != "DPoP "+at || req.Header.Get("DPoP") == "" {
		t.Fatalf("Authorize set %v, want the DPoP scheme and a proof", req.Header)
	}
	_, err = e.Authority.Verifier().VerifyDPoP(ctx(t), at, req.Header.Get("DPoP"), "GET", "https://api.example/orders")
	if err != nil {
		t.Fatalf("VerifyDPoP(refreshed token, Authorize's proof) = %v", err)
	}

	// A proof of another key with the current refresh token: theft.
	stolen := ts.Tokens().RefreshToken
	thief := e.anon.TokenSource(client.Tokens{RefreshToken: stolen}, client.TokenSourceOptions{DPoP: newP256(t)})
	_, err = thief.Token(ctx(t))
	if !errors.As(err, &ce) || ce.Code != authority.CodeInvalidDPoPProof {
		t.Fatalf("Refresh(proof of another key) = %v, want invalid_dpop_proof", err)
	}
	if _, err := ts.Token(ctx(t)); err != nil {
		// The access token is still fresh: no refresh happens.
		t.Fatalf("Token() after the theft attempt = %v", err)
	}
	if _, err := e.anon.Refresh(ctx(t), stolen); !errors.Is(err, client.ErrInvalidGrant) && !errors.As(err, &ce) {
		t.Fatalf("Refresh(after theft) = %v", err)
	}
	if _, err := e.Authority.Verifier().Verify(ctx(t), at); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("Verify(token of the revoked session) = %v, want ErrRevoked", err)
	}
	page, err := e.admin.Audit(ctx(t), client.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var bind, failed bool
	for _, r := range page.Records {
		bind = bind || (r.Action == "session.bind" && r.Target == tok.SessionID)
		failed = failed || (r.Action == "session.binding_failed" && r.Target == tok.SessionID)
	}
	if !bind || !failed {
		t.Errorf("audit: session.bind %v, session.binding_failed %v; want both", bind, failed)
	}
}

// TestDPoPProofAtSignIn binds a session with a DPoP header at POST
// /v1/sessions (RFC 9449's token request), and refuses a proof for
// another endpoint.
func TestDPoPProofAtSignIn(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	key := newP256(t)
	jkt, _ := client.Thumbprint(key.Public())
	send := func(url string) (*http.Response, client.Tokens) {
		proof, err := dpop.NewProof(key, "POST", url, "", "", e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		var out client.Tokens
		c := *e.admin
		c.HTTPClient = &http.Client{Transport: headerTransport{"DPoP", proof}}
		err = c.Do(ctx(t), "POST", "/v1/sessions", client.SessionRequest{Subject: "erin"}, &out)
		var ce *client.Error
		if errors.As(err, &ce) {
			return &http.Response{StatusCode: ce.Status, Status: ce.Code}, out
		}
		if err != nil {
			t.Fatal(err)
		}
		return &http.Response{StatusCode: 201}, out
	}
	res, tok := send(e.URL + "/v1/sessions")
	if res.StatusCode != 201 || tok.TokenType != "DPoP" {
		t.Fatalf("POST /v1/sessions with a proof = %d %s %+v, want a DPoP session", res.StatusCode, res.Status, tok)
	}
	s, err := e.admin.Session(ctx(t), tok.SessionID)
	if err != nil || s.Binding == nil || s.Binding.JKT != jkt || s.Binding.Kind != client.BindingDPoP {
		t.Fatalf("Session = %+v, %v; want bound to %s", s.Binding, err, jkt)
	}
	if res, _ := send(e.URL + "/v1/token/refresh"); res.StatusCode != 400 || res.Status != authority.CodeInvalidDPoPProof {
		t.Errorf("POST /v1/sessions with a proof for another URL = %d %s, want 400 invalid_dpop_proof", res.StatusCode, res.Status)
	}
}

// headerTransport adds a header to every request.
type headerTransport struct{ name, value string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return http.DefaultTransport.RoundTrip(r)
}
