package server_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/verifier"
)

// keyIDByName returns the id of the live key named name.
func keyIDByName(t *testing.T, c *client.Client, prefix string) string {
	t.Helper()
	list, err := c.APIKeys(ctx(t))
	if err != nil {
		t.Fatalf("APIKeys() = %v", err)
	}
	for _, k := range list {
		if strings.HasPrefix(k.Name, prefix) {
			return k.ID
		}
	}
	t.Fatalf("APIKeys() = %+v, want a key named %s*", list, prefix)
	return ""
}

// TestBootstrapKeyRotationRunbook executes docs/operations.md's "API key
// rotation" for the bootstrap admin key and the feed key on two nodes
// sharing Postgres, with a verifier following them: at every step the
// clients on the key of the moment are answered. Nodes and verifiers share
// a clock, which the test moves while it waits for the gate on the revoked
// key to go stale.
func TestBootstrapKeyRotationRunbook(t *testing.T) {
	t.Parallel()
	clk := newClock()
	base := server.Config{DB: migrated.Schema(t), Issuer: "https://auth.test", DataDir: filepath.Join(t.TempDir(), "d"),
		MasterKey: base64.StdEncoding.EncodeToString(make([]byte, 32)), APIKey: authority.NewAPIKey(), FeedKey: authority.NewAPIKey(),
		Clock: clk, Logger: quietLog()}
	// Nodes come back at their addresses, so they start at ones no
	// listener on port 0 takes while they are down.
	at := func(cfg server.Config) server.Config { cfg.Addr = freeAddr(t); return cfg }
	a, b := mustStart(t, at(base)), mustStart(t, at(base))
	defer func() { stop(t, b) }()
	// Nodes come back at their addresses, which the verifiers follow.
	restart := func(r *server.Running, cfg server.Config) *server.Running {
		t.Helper()
		stop(t, r)
		cfg.Addr = strings.TrimPrefix(r.URL, "http://")
		return mustStart(t, cfg)
	}
	oldAdmin, oldFeed := base.APIKey, base.FeedKey
	follower := func(key string, staleAfter time.Duration) *verifier.Verifier {
		t.Helper()
		cfg := verifier.Config{Authorities: []string{a.URL, b.URL}, APIKey: key, StaleAfter: staleAfter, Logger: quietLog()}
		cfg.Clock = clk
		v, err := verifier.New(ctx(t), cfg)
		if err != nil {
			t.Fatalf("verifier.New: %v", err)
		}
		t.Cleanup(func() { _ = v.Close() })
		if err := v.WaitReady(ctx(t)); err != nil {
			t.Fatalf("WaitReady: %v", err)
		}
		return v
	}
	// The gate left on the old key must go stale once that key is
	// revoked: it does within 3 s instead of the default 10.
	oldGate, movedGate := follower(oldFeed, 3*time.Second), follower(oldFeed, 0)

	// 1. tegata apikeys create: the new secrets; the old keys stay live.
	admin := &client.Client{BaseURL: a.URL, APIKey: oldAdmin}
	newAdmin := createKey(t, admin, "admin-2", authority.RoleAdmin)
	newFeed := createKey(t, admin, "feed-2", authority.RoleFeed)

	// 2. every node gets the new secrets and restarts, one by one.
	next := base
	next.APIKey, next.FeedKey = newAdmin.Key, newFeed.Key
	a = restart(a, next)
	for _, c := range []struct {
		name, url, key string
	}{{"old key, restarted node", a.URL, oldAdmin}, {"new key, restarted node", a.URL, newAdmin.Key},
		{"old key, other node", b.URL, oldAdmin}, {"new key, other node", b.URL, newAdmin.Key}} {
		if _, err := (&client.Client{BaseURL: c.url, APIKey: c.key}).APIKeys(ctx(t)); err != nil {
			t.Errorf("during the roll, %s: %v, want answered", c.name, err)
		}
	}
	b = restart(b, next)

	// 3. clients and gates move to the new secrets; the gate on the old
	// feed key has followed the restarted nodes meanwhile. One gate is
	// restarted with the new key, another takes it from its key file
	// without a restart (Verifier.SetAPIKey), after refusing a mistyped one.
	newGate := follower(newFeed.Key, 0)
	if err := movedGate.SetAPIKey(ctx(t), newFeed.Key+"x"); !errors.Is(err, verifier.ErrKeyRefused) {
		t.Errorf("SetAPIKey(a mistyped key) = %v, want ErrKeyRefused", err)
	}
	if err := movedGate.SetAPIKey(ctx(t), newFeed.Key); err != nil {
		t.Fatalf("SetAPIKey(the new feed key) = %v", err)
	}
	fresh, err := (&client.Client{BaseURL: b.URL, APIKey: newAdmin.Key}).CreateSession(ctx(t), client.SessionRequest{Subject: "bob", Device: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the gate on the old feed key accepts a token of the restarted nodes", func() bool {
		_, err := oldGate.Verify(ctx(t), fresh.AccessToken)
		return err == nil
	})

	// 4. tegata apikeys revoke the old keys.
	admin = &client.Client{BaseURL: a.URL, APIKey: newAdmin.Key}
	for _, prefix := range []string{"bootstrap-", "feed-"} {
		id := keyIDByName(t, admin, prefix)
		if err := admin.RevokeAPIKey(ctx(t), client.APIKeyRevocation{ID: id, Reason: "rotated"}); err != nil {
			t.Fatalf("RevokeAPIKey(%s) = %v", prefix, err)
		}
	}
	_, err = (&client.Client{BaseURL: a.URL, APIKey: oldAdmin}).APIKeys(ctx(t))
	wantStatus(t, "the old bootstrap key after its revocation", err, http.StatusUnauthorized)
	if s := feedStatus(t, a.URL, oldFeed); s != http.StatusUnauthorized {
		t.Errorf("GET /v1/feed with the old feed key after its revocation = %d, want 401", s)
	}
	stale := base
	if _, err := server.Start(ctx(t), stale); !errors.Is(err, authority.ErrAPIKeyRevoked) {
		t.Errorf("Start with the old, revoked keys = %v, want ErrAPIKeyRevoked", err)
	}

	tok, err := admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the gate on the new feed key has the revocation", func() bool {
		_, err := newGate.Verify(ctx(t), tok.AccessToken)
		return errors.Is(err, verifier.ErrRevoked)
	})
	eventually(t, "the gate that took the new key from its file has the revocation", func() bool {
		_, err := movedGate.Verify(ctx(t), tok.AccessToken)
		return errors.Is(err, verifier.ErrRevoked)
	})
	eventually(t, "the gate still on the revoked feed key refuses tokens", func() bool {
		clk.Add(100 * time.Millisecond)
		_, err := oldGate.Verify(ctx(t), fresh.AccessToken)
		return errors.Is(err, verifier.ErrStale)
	})
	if _, err := movedGate.Verify(ctx(t), fresh.AccessToken); err != nil {
		t.Errorf("the gate that took the new key, once the old one is revoked and its holders stale: Verify = %v, want accepted", err)
	}
	stop(t, a)
}

// TestMasterKeyRotationRunbook executes docs/operations.md's "Master key
// rotation" on two Postgres nodes: three rolling restarts (accept the new
// key, seal with it, drop the old), with a session refreshed, a signing
// key rotated and tokens verified at every step; a node given only the old
// key is refused at the end.
func TestMasterKeyRotationRunbook(t *testing.T) {
	t.Parallel()
	key := func(b byte) string { k := make([]byte, 32); k[0] = b; return base64.StdEncoding.EncodeToString(k) }
	oldKey, newKey := key(1), key(2)
	base := server.Config{Addr: "127.0.0.1:0", DB: migrated.Schema(t), Issuer: "https://auth.test", DataDir: filepath.Join(t.TempDir(), "d"),
		MasterKey: oldKey, APIKey: authority.NewAPIKey(), Logger: quietLog()}
	nodes := []*server.Running{mustStart(t, base), mustStart(t, base)}
	defer func() {
		for _, r := range nodes {
			stop(t, r)
		}
	}()
	admin := func(i int) *client.Client { return &client.Client{BaseURL: nodes[i].URL, APIKey: base.APIKey} }
	tok, err := admin(0).CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	refresh := tok.RefreshToken
	// check refreshes the session on every node and reloads the signing
	// keys there: everything sealed opens on every node.
	check := func(step string) {
		t.Helper()
		for i := range nodes {
			next, err := (&client.Client{BaseURL: nodes[i].URL}).Refresh(ctx(t), refresh)
			if err != nil {
				t.Fatalf("%s: Refresh on node %d = %v", step, i, err)
			}
			refresh = next.RefreshToken
			if err := nodes[i].Authority.ReloadKeys(ctx(t)); err != nil {
				t.Fatalf("%s: ReloadKeys on node %d = %v", step, i, err)
			}
			if !active(t, &env{Running: nodes[i], admin: admin(i)}, tok.AccessToken) {
				t.Fatalf("%s: the access token minted before the rotation is inactive on node %d", step, i)
			}
		}
	}
	roll := func(step, master, other string) {
		t.Helper()
		for i := range nodes {
			stop(t, nodes[i])
			cfg := base
			cfg.MasterKey, cfg.MasterKeyOther = master, other
			nodes[i] = mustStart(t, cfg)
			check(step + ", after restarting node " + fmt.Sprint(i))
		}
	}
	roll("1. accept the new key", oldKey, newKey)
	roll("2. seal with the new key", newKey, oldKey)
	if _, err := admin(0).RotateKey(ctx(t), "after the master key rotation"); err != nil {
		t.Fatal(err)
	}
	check("a signing key added under the new master key")
	roll("3. drop the old key", newKey, "")

	stale := base
	_, err = server.Start(ctx(t), stale)
	if err == nil || !strings.Contains(err.Error(), "master key") || !strings.Contains(err.Error(), "differs from the cluster's") {
		t.Errorf("Start with only the old master key after the rotation = %v, want a refusal naming the master key", err)
	}
}
