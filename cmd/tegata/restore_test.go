package main_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/testproc"
)

// TestRestoreRunbookSQLite follows docs/operations.md's SQLite backup and
// restore runbook with the binary: an online backup with the sqlite3
// shell, a session and an API key revoked after it, the node stopped, the
// file copied back, the node started with no flag. The revoked session's
// access and refresh tokens and the revoked API key are refused.
func TestRestoreRunbookSQLite(t *testing.T) {
	t.Parallel()
	needSQLite3(t)
	dir := t.TempDir()
	p := serve(t, dir, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=")
	key, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := &client.Client{BaseURL: p.URL(), APIKey: strings.TrimSpace(string(key))}
	tok, err := admin.CreateSession(ctx, client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := admin.CreateAPIKey(ctx, client.APIKeyRequest{Name: "app", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	restore := backupSQLite(t, dir)
	if _, err := admin.RevokeSession(ctx, client.SessionRevocation{SessionID: tok.SessionID}); err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeAPIKey(ctx, client.APIKeyRevocation{ID: app.ID}); err != nil {
		t.Fatal(err)
	}
	stop(t, p)

	restore()
	p = serve(t, dir, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY=")
	defer stop(t, p)
	p.waitLog(t, "the database was restored from a backup")
	admin.BaseURL = p.URL()
	if res, err := admin.Introspect(ctx, tok.AccessToken); err != nil || res.Active {
		t.Errorf("Introspect(access token of the session revoked after the backup) = %+v, %v; want inactive", res, err)
	}
	if _, err := (&client.Client{BaseURL: p.URL()}).Refresh(ctx, tok.RefreshToken); err == nil {
		t.Errorf("Refresh(session revoked after the backup) = nil, want refused")
	}
	var ce *client.Error
	if _, err := (&client.Client{BaseURL: p.URL(), APIKey: app.Key}).APIKeys(ctx); !errors.As(err, &ce) || ce.Status != 401 {
		t.Errorf("APIKeys(API key revoked after the backup) = %v, want 401", err)
	}
	if _, err := admin.APIKeys(ctx); err != nil {
		t.Errorf("APIKeys(the bootstrap key of the data directory) = %v, want answered", err)
	}
}

func needSQLite3(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sqlite3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the sqlite3 shell is not installed under CI=true")
		}
		t.Skip("the sqlite3 shell is not installed")
	}
}

// backupSQLite backs the data directory's database up as the runbook
// does (sqlite3 .backup, online) and returns the runbook's restore: the
// copy over tegata.db, its -wal and -shm deleted (the node stopped).
func backupSQLite(t *testing.T, dir string) (restore func()) {
	t.Helper()
	db, backup := filepath.Join(dir, "tegata.db"), filepath.Join(t.TempDir(), "backup.db")
	if out, err := exec.Command("sqlite3", db, ".backup "+backup).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3 .backup: %v\n%s", err, out)
	}
	return func() {
		b, err := os.ReadFile(backup)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{db + "-wal", db + "-shm"} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(db, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFrozenGateAcrossRestore: a gate frozen (SIGSTOP) while its
// authority's database is restored from a backup and the restored log
// grows past the position the gate held refuses, once it runs again and
// says it is ready, every token revoked on the restored database and every
// token issued before the restore: it started over on the new epoch
// instead of resuming inside reused positions.
func TestFrozenGateAcrossRestore(t *testing.T) {
	t.Parallel()
	needSQLite3(t)
	dir, addr := t.TempDir(), freeAddr(t)
	authEnv := []string{"TEGATA_FEED_KEY=" + testFeedKey, "TEGATA_API_KEY=", "TEGATA_MASTER_KEY="}
	p := serveAt(t, addr, dir, nil, authEnv...)
	g, gurl := startGate(t, []string{"TEGATA_FEED_KEY=" + testFeedKey, "TEGATA_API_KEY="},
		"--authority", "http://"+addr, "--stale-after", "30s")
	defer stop(t, g)
	poll(t, "the gate to be ready", func() bool { code, _ := get(t, gurl+"/readyz"); return code == 200 })
	key, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := &client.Client{BaseURL: "http://" + addr, APIKey: strings.TrimSpace(string(key))}
	n := 0
	newSession := func() client.Tokens { // a subject each: sign-ins are rate-limited per subject
		t.Helper()
		n++
		tok, err := admin.CreateSession(ctx, client.SessionRequest{Subject: fmt.Sprint("user-", n), Device: "laptop"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	before := newSession()
	restore := backupSQLite(t, dir)
	for range 20 { // the gate's position moves past the backup's head
		if _, err := admin.RevokeSession(ctx, client.SessionRevocation{SessionID: newSession().SessionID}); err != nil {
			t.Fatal(err)
		}
	}
	last := newSession()
	if _, err := admin.RevokeSession(ctx, client.SessionRevocation{SessionID: last.SessionID}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the gate to have the revocations", func() bool { return authStatus(t, gurl, last.AccessToken) == 401 })
	if err := testproc.Freeze(g.cmd.Process); err != nil {
		t.Fatal(err)
	}
	defer g.cmd.Process.Signal(syscall.SIGCONT) // a frozen gate never stops: on failure, before stop(t, g)
	stop(t, p)
	restore()
	p = serveAt(t, addr, dir, nil, authEnv...)
	defer stop(t, p)
	var revoked []client.Tokens
	for range 60 { // reuses every position the gate held
		tok := newSession()
		if _, err := admin.RevokeSession(ctx, client.SessionRevocation{SessionID: tok.SessionID}); err != nil {
			t.Fatal(err)
		}
		revoked = append(revoked, tok)
	}
	live := newSession()
	if err := g.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	poll(t, "the gate ready and accepting a token of the restored database", func() bool {
		code, _ := get(t, gurl+"/readyz")
		return code == 200 && authStatus(t, gurl, live.AccessToken) == 200
	})
	missed := 0
	for _, tok := range revoked {
		if authStatus(t, gurl, tok.AccessToken) != 401 {
			missed++
		}
	}
	if missed > 0 {
		t.Errorf("the gate accepted %d of the %d tokens revoked on the restored database", missed, len(revoked))
	}
	if code := authStatus(t, gurl, before.AccessToken); code != 401 {
		t.Errorf("GET /auth with a token issued before the restore = %d, want 401", code)
	}
}

// authStatus is the gate's forward-auth answer for an access token.
func authStatus(t *testing.T, gurl, accessToken string) int {
	t.Helper()
	req, err := http.NewRequest("GET", gurl+"/auth", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /auth: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
