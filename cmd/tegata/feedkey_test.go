package main_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
)

// TestFeedKeyRotationRunbook executes docs/operations.md's rotation of the
// bootstrap feed key on two Postgres nodes and a gate that reads its key
// from TEGATA_FEED_KEY_FILE, while a client keeps asking the gate about a
// valid token: the gate answers 200 throughout (it is never down), takes
// the new key from its file without a restart, and a mistyped key written
// into the file meanwhile is not taken.
func TestFeedKeyRotationRunbook(t *testing.T) {
	t.Parallel()
	admin, oldFeed := authority.NewAPIKey(), authority.NewAPIKey()
	env := []string{"TEGATA_DB=" + migrated.Schema(t), "TEGATA_ISSUER=https://auth.test", "TEGATA_API_KEY=" + admin,
		"TEGATA_MASTER_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))}
	addrA, addrB := freeAddr(t), freeAddr(t)
	a := serveAt(t, addrA, t.TempDir(), nil, append(env, "TEGATA_FEED_KEY="+oldFeed)...)
	b := serveAt(t, addrB, t.TempDir(), nil, append(env, "TEGATA_FEED_KEY="+oldFeed)...)
	keyFile := filepath.Join(t.TempDir(), "feed-key")
	writeKey := func(key string) {
		t.Helper()
		// As a secret manager does: a new file renamed over the old.
		tmp := keyFile + ".new"
		if err := os.WriteFile(tmp, []byte(key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, keyFile); err != nil {
			t.Fatal(err)
		}
	}
	writeKey(oldFeed)
	g, gurl := startGate(t, []string{"TEGATA_FEED_KEY=", "TEGATA_FEED_KEY_FILE=" + keyFile, "TEGATA_API_KEY="},
		"--authority", "http://"+addrA+",http://"+addrB)
	poll(t, "the gate to be ready", func() bool { code, _ := get(t, gurl+"/readyz"); return code == 200 })
	c := &client.Client{BaseURL: a.URL(), APIKey: admin}
	tok, err := c.CreateSession(context.Background(), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the gate to allow the token", func() bool { return authStatus(t, gurl, tok.AccessToken) == 200 })

	// Someone asks the gate about the valid token the whole time.
	var asked, refused atomic.Int64
	done, stopAsking := make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		defer close(done)
		for {
			select {
			case <-stopAsking:
				return
			default:
			}
			asked.Add(1)
			if authStatus(t, gurl, tok.AccessToken) != 200 {
				refused.Add(1)
			}
		}
	}()
	finish := func() { once.Do(func() { close(stopAsking); <-done }) }
	defer finish()

	// 1. tegata apikeys create --role feed: the old key stays live.
	newFeed, err := c.CreateAPIKey(context.Background(), client.APIKeyRequest{Name: "feed-2", Role: authority.RoleFeed})
	if err != nil {
		t.Fatal(err)
	}
	// 2. the new secret on every node, restarted one by one.
	stop(t, a)
	a = serveAt(t, addrA, t.TempDir(), nil, append(env, "TEGATA_FEED_KEY="+newFeed.Key)...)
	stop(t, b)
	b = serveAt(t, addrB, t.TempDir(), nil, append(env, "TEGATA_FEED_KEY="+newFeed.Key)...)
	// 3. the new secret in every gate's key file. A mistyped one first: not taken.
	writeKey(newFeed.Key[:len(newFeed.Key)-2] + "xx")
	_ = g.cmd.Process.Signal(syscall.SIGHUP)
	g.waitLog(t, "the new key in the key file was not taken")
	writeKey(newFeed.Key)
	_ = g.cmd.Process.Signal(syscall.SIGHUP)
	g.waitLog(t, "the key file holds a new key")
	// 4. tegata apikeys revoke the old key.
	c = &client.Client{BaseURL: b.URL(), APIKey: admin}
	keys, err := c.APIKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasPrefix(k.Name, "feed") && k.Name != "feed-2" {
			if err := c.RevokeAPIKey(context.Background(), client.APIKeyRevocation{ID: k.ID, Reason: "rotated"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	revoked, err := c.CreateSession(context.Background(), client.SessionRequest{Subject: "bob", Device: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeSession(context.Background(), client.SessionRevocation{SessionID: revoked.SessionID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	poll(t, "a revocation made after the old key's revocation to reach the gate", func() bool {
		return authStatus(t, gurl, revoked.AccessToken) == 401
	})
	finish()
	if n := refused.Load(); n != 0 {
		t.Errorf("the gate refused the valid token %d times of %d during the rotation, want never", n, asked.Load())
	}
	if code, body := get(t, gurl+"/readyz"); code != 200 {
		t.Errorf("GET /readyz after the rotation = %d %s, want 200", code, body)
	}
	if logs := g.Logs(); strings.Contains(logs, "feed: the authority refused") || strings.Contains(logs, oldFeed) || strings.Contains(logs, newFeed.Key) {
		t.Errorf("the gate's log shows its key refused on the feed, or a key:\n%s", logs)
	}
}
