package main_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// TestRestoreRunbookSQLite follows docs/operations.md's SQLite backup and
// restore runbook with the binary: an online backup with the sqlite3
// shell, a session and an API key revoked after it, the node stopped, the
// file copied back, the node started with no flag. The revoked session's
// access and refresh tokens and the revoked API key are refused.
func TestRestoreRunbookSQLite(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the sqlite3 shell is not installed under CI=true")
		}
		t.Skip("the sqlite3 shell is not installed")
	}
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
	db, backup := filepath.Join(dir, "tegata.db"), filepath.Join(t.TempDir(), "backup.db")
	if out, err := exec.Command("sqlite3", db, ".backup "+backup).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3 .backup: %v\n%s", err, out)
	}
	if _, err := admin.RevokeSession(ctx, client.SessionRevocation{SessionID: tok.SessionID}); err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeAPIKey(ctx, client.APIKeyRevocation{ID: app.ID}); err != nil {
		t.Fatal(err)
	}
	stop(t, p)

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
