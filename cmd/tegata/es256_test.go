package main_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/token"
	"github.com/tegata-dev/tegata/verifier"
)

// TestServeES256: `tegata serve --alg ES256` signs with ES256, and a
// verifier with the default configuration accepts what it publishes and
// honours its revocations; `token inspect` agrees.
func TestServeES256(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serveArgs(t, dir, []string{"--alg", "ES256"}, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=")
	key, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &client.Client{BaseURL: p.URL(), APIKey: strings.TrimSpace(string(key))}
	tok, err := c.CreateSession(ctx, client.SessionRequest{Subject: "erin", Device: "es256"})
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if h, _, err := token.Inspect(tok.AccessToken); err != nil || h["alg"] != token.ES256 {
		t.Fatalf("header of the access token = %v, %v, want alg ES256", h, err)
	}
	v, err := verifier.New(ctx, verifier.Config{Authorities: []string{p.URL()}, APIKey: c.APIKey})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	defer v.Close()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if claims, err := v.Verify(ctx, tok.AccessToken); err != nil || claims.Subject() != "erin" {
		t.Fatalf("Verify(ES256 token) = %v, %v, want erin's claims", claims, err)
	}
	ops := []string{"TEGATA_AUTHORITY=" + p.URL(), "TEGATA_DATA=" + dir, "TEGATA_API_KEY="}
	if out, code := run(t, ops, "token", "inspect", tok.AccessToken); code != 0 || !strings.Contains(out, "VALID") {
		t.Fatalf("token inspect (ES256) = %d\n%s", code, out)
	}
	if out, code := run(t, ops, "keys", "list"); code != 0 || !strings.Contains(out, "ES256") {
		t.Fatalf("keys list = %d, want an ES256 key\n%s", code, out)
	}
	if _, err := c.RevokeSession(ctx, client.SessionRevocation{SessionID: tok.SessionID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	testtime.Eventually(t, 10*time.Second, "the revocation to reach the verifier", func() error {
		if _, err := v.Verify(ctx, tok.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
			return fmt.Errorf("Verify = %v, want ErrRevoked", err)
		}
		return nil
	})
}
