package server_test

import (
	"testing"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/verifier"
)

// TestIssuerWithTrailingSlash: a verifier configured from discovery alone
// must accept the authority's tokens whatever the issuer URL looks like
// (RFC 8414 §3.3: the published issuer is the iss, character for character).
func TestIssuerWithTrailingSlash(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.Issuer = "https://auth.example/" })
	tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "olga"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(ctx(t), verifier.Config{Authorities: []string{e.URL}, APIKey: e.APIKey})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	defer v.Close()
	if err := v.WaitReady(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx(t), tk.AccessToken); err != nil {
		t.Fatalf("Verify(token) with the issuer from discovery = %v, want nil", err)
	}
}
