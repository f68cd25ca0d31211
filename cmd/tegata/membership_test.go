package main_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
)

// TestGateFollowsNewNodes: a gate given one authority follows a node
// started after it that advertises its URL (TEGATA_ADVERTISE_URL), stays
// ready when the node it was given stops, and enforces a revocation made on
// the node it learned of.
func TestGateFollowsNewNodes(t *testing.T) {
	t.Parallel()
	admin := authority.NewAPIKey()
	env := []string{"TEGATA_DB=" + migrated.Schema(t), "TEGATA_ISSUER=https://auth.test", "TEGATA_API_KEY=" + admin,
		"TEGATA_MASTER_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32)), "TEGATA_FEED_KEY=" + testFeedKey}
	seed := serve(t, t.TempDir(), env...)
	g, gurl := startGate(t, []string{"TEGATA_FEED_KEY=" + testFeedKey, "TEGATA_API_KEY="}, "--authority", seed.URL())
	poll(t, "the gate to be ready", func() bool { code, _ := get(t, gurl+"/readyz"); return code == 200 })

	addr := freeAddr(t)
	third := serveAt(t, addr, t.TempDir(), nil, append(env, "TEGATA_ADVERTISE_URL=http://"+addr+"/")...)
	g.waitLog(t, "following the cluster's advertised nodes")
	if logs := g.Logs(); !strings.Contains(logs, "http://"+addr) {
		t.Fatalf("the gate's log does not name the node it follows now, http://%s:\n%s", addr, logs)
	}
	if code, body := get(t, gurl+"/metrics"); code != 200 || !strings.Contains(body, "tegata_gate_authorities 2") {
		t.Errorf("GET /metrics = %d, want tegata_gate_authorities 2 (its seed and the advertised node)", code)
	}

	stop(t, seed)
	c := &client.Client{BaseURL: third.URL(), APIKey: admin}
	tok, err := c.CreateSession(context.Background(), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the gate, its seed stopped, to allow a token of the third node", func() bool { return authStatus(t, gurl, tok.AccessToken) == 200 })
	if code, body := get(t, gurl+"/readyz"); code != 200 {
		t.Errorf("GET /readyz with the seed stopped = %d %s, want 200", code, body)
	}
	if _, err := c.RevokeSession(context.Background(), client.SessionRevocation{SessionID: tok.SessionID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the revocation made on the third node to reach the gate", func() bool { return authStatus(t, gurl, tok.AccessToken) == 401 })
}
