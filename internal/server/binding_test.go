package server_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/verifier"
)

func edJWK(seed byte) []byte {
	pub := ed25519.NewKeyFromSeed(append(make([]byte, 31), seed)).Public().(ed25519.PublicKey)
	return []byte(`{"kty":"OKP","crv":"Ed25519","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`)
}

// TestBindSessionAPI binds a session the way a web gate does at DBSC
// registration (gate key), reads the binding back, and reports a failed
// proof, which revokes the session as theft.
func TestBindSessionAPI(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	gateKey := createKey(t, e.admin, "web", authority.RoleGate)
	gate := &client.Client{BaseURL: e.URL, APIKey: gateKey.Key}
	tok, err := gate.CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	unbound, err := gate.Session(ctx(t), tok.SessionID)
	if err != nil || unbound.Binding != nil {
		t.Fatalf("Session(new) = %+v, %v; want unbound", unbound, err)
	}
	_, err = gate.BindingFailed(ctx(t), client.SessionRevocation{SessionID: tok.SessionID})
	if !errors.Is(err, client.ErrConflict) {
		t.Fatalf("BindingFailed(unbound) = %v, want ErrConflict", err)
	}

	other, err := gate.CreateSession(ctx(t), client.SessionRequest{Subject: "mallory", Device: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, rt string
		want     error
	}{
		{"another session's", other.RefreshToken, client.ErrInvalidGrant},
		{"a malformed", "tgr_unknown", client.ErrInvalidRequest},
	} {
		_, err := gate.BindSession(ctx(t), client.BindRequest{SessionID: tok.SessionID, Kind: client.BindingDBSC, JWK: edJWK(2), RefreshToken: c.rt})
		if !errors.Is(err, c.want) {
			t.Fatalf("BindSession(with %s refresh token) = %v, want %v", c.name, err, c.want)
		}
	}
	if s, err := gate.Session(ctx(t), tok.SessionID); err != nil || s.Binding != nil {
		t.Fatalf("Session(after refused bindings) = %+v, %v; want unbound", s, err)
	}

	bound, err := gate.BindSession(ctx(t), client.BindRequest{SessionID: tok.SessionID, Kind: client.BindingDBSC, JWK: edJWK(1), RefreshToken: tok.RefreshToken, Reason: "registration"})
	if err != nil {
		t.Fatalf("BindSession = %v", err)
	}
	if b := bound.Binding; b == nil || b.Kind != client.BindingDBSC || len(b.JKT) != 43 || !strings.Contains(string(b.JWK), `"kty":"OKP"`) {
		t.Fatalf("BindSession = %+v, want a dbsc binding with its key", bound.Binding)
	}
	got, err := gate.Session(ctx(t), tok.SessionID)
	if err != nil || got.Binding == nil || got.Binding.JKT != bound.Binding.JKT || string(got.Binding.JWK) != string(bound.Binding.JWK) {
		t.Fatalf("Session(bound) = %+v, %v; want the binding %+v", got.Binding, err, bound.Binding)
	}
	list, err := gate.Sessions(ctx(t), "alice")
	if err != nil || len(list) != 1 || list[0].Binding == nil || list[0].Binding.Kind != client.BindingDBSC || list[0].Binding.JWK != nil {
		t.Fatalf("Sessions(alice) = %+v, %v; want the binding kind without the key", list, err)
	}
	if _, err := gate.BindSession(ctx(t), client.BindRequest{SessionID: tok.SessionID, Kind: client.BindingDBSC, JWK: edJWK(1)}); err != nil {
		t.Errorf("BindSession(same key again) = %v, want nil", err)
	}
	for name, req := range map[string]client.BindRequest{
		"another key":     {SessionID: tok.SessionID, Kind: client.BindingDBSC, JWK: edJWK(2)},
		"another kind":    {SessionID: tok.SessionID, Kind: client.BindingDPoP, JWK: edJWK(1)},
		"private key":     {SessionID: tok.SessionID, Kind: client.BindingDBSC, JWK: []byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}`)},
		"unknown kind":    {SessionID: tok.SessionID, Kind: "tpm", JWK: edJWK(1)},
		"unknown session": {SessionID: "nope", Kind: client.BindingDBSC, JWK: edJWK(1)},
	} {
		_, err := gate.BindSession(ctx(t), req)
		want := client.ErrInvalidRequest
		switch name {
		case "another key", "another kind":
			want = client.ErrConflict
		case "unknown session":
			want = client.ErrNotFound
		}
		if !errors.Is(err, want) {
			t.Errorf("BindSession(%s) = %v, want %v", name, err, want)
		}
	}

	v := e.Authority.Verifier()
	if _, err := v.Verify(ctx(t), tok.AccessToken); err != nil {
		t.Fatalf("Verify(before the failed proof) = %v", err)
	}
	r, err := gate.BindingFailed(ctx(t), client.SessionRevocation{SessionID: tok.SessionID, Reason: "refresh proof signed by another key"})
	if err != nil || !r.Revoked {
		t.Fatalf("BindingFailed = %+v, %v; want revoked", r, err)
	}
	if _, err := v.Verify(ctx(t), tok.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("Verify(after the failed proof) = %v, want ErrRevoked", err)
	}
	if _, err := gate.Refresh(ctx(t), tok.RefreshToken); !errors.Is(err, client.ErrInvalidGrant) {
		t.Errorf("Refresh(after the failed proof) = %v, want ErrInvalidGrant", err)
	}
	page, err := e.admin.Audit(ctx(t), client.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, a := range page.Records {
		actions[a.Action] = a.Reason
	}
	if actions["session.bind"] != "dbsc: registration" || actions["session.binding_failed"] != "refresh proof signed by another key" {
		t.Errorf("audit = %v, want session.bind and session.binding_failed with their reasons", actions)
	}
	if n := e.Authority.Counters()[authority.RevokedBindingFailed]; n != 1 {
		t.Errorf("Counters()[binding_failed] = %d, want 1", n)
	}
}
