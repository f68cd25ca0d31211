package main_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/testproc"
)

// TestVerifiersAndConfirm: 'tegata verifiers' lists a running gate by its
// --name, 'tegata revoke --confirm' says when the revocation is in force
// on it, and with the gate frozen exits 3 naming it as pending.
func TestVerifiersAndConfirm(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := serve(t, dir, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=", "TEGATA_FEED_KEY="+testFeedKey)
	url := p.URL()
	g, gurl := startGate(t, []string{"TEGATA_FEED_KEY=" + testFeedKey, "TEGATA_API_KEY="},
		"--authority", url, "--name", "edge-1", "--stale-after", "30s")
	poll(t, "the gate to be ready", func() bool { code, _ := get(t, gurl+"/readyz"); return code == 200 })
	ops := []string{"TEGATA_AUTHORITY=" + url, "TEGATA_DATA=" + dir, "TEGATA_API_KEY="}

	// The gate says it is current in the report after the one that earned
	// its first lease: a moment after /readyz turns 200.
	var out string
	var code int
	poll(t, "tegata verifiers to list edge-1 as current", func() bool {
		out, code = run(t, ops, "verifiers")
		return code == 0 && strings.Contains(out, "edge-1") && strings.Contains(out, "current") && strings.Contains(out, "1 verifier;")
	})
	key, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	c := &client.Client{BaseURL: url, APIKey: strings.TrimSpace(string(key))}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	session := func() string {
		tok, err := c.CreateSession(ctx, client.SessionRequest{Subject: "confirm"})
		if err != nil {
			t.Fatal(err)
		}
		return tok.SessionID
	}

	out, code = run(t, ops, "revoke", "--session", session(), "--confirm", "5s")
	if code != 0 || !strings.Contains(out, "in force on every verifier (1 confirmed)") {
		t.Fatalf("revoke --confirm 5s = %d, want 0, in force on 1\n%s", code, out)
	}

	if err := testproc.Freeze(g.cmd.Process); err != nil {
		t.Fatal(err)
	}
	defer g.cmd.Process.Signal(syscall.SIGCONT)
	out, code = run(t, ops, "revoke", "--session", session(), "--confirm", "300ms")
	if code != 3 || !strings.Contains(out, "NOT yet in force") || !strings.Contains(out, "edge-1") {
		t.Fatalf("revoke --confirm 300ms with the gate frozen = %d, want 3 naming edge-1 pending\n%s", code, out)
	}
	if out, code = run(t, ops, "revoke", "--session", session(), "--confirm", "-1s"); code != 2 {
		t.Fatalf("revoke --confirm -1s = %d, want 2\n%s", code, out)
	}
}
