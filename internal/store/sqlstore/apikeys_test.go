package sqlstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// TestAPIKeyRevocationMigration upgrades a database created before API keys
// could be revoked: SQLite has to rebuild the table, and the keys in it
// must come through unchanged and live.
func TestAPIKeyRevocationMigration(t *testing.T) {
	ctx := context.Background()
	dir := os.DirFS("../sqlite/schema")
	first, err := fs.ReadFile(dir, "0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.db")
	db := openDB(t, path)
	old, err := New(ctx, db, db, testDialect(fstest.MapFS{"0001_init.sql": {Data: first}}))
	if err != nil {
		t.Fatalf("New(schema 1) = %v", err)
	}
	created := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	hash := sha256.Sum256([]byte("secret"))
	if _, err := db.ExecContext(ctx, `INSERT INTO api_keys (id, name, hash, role, created_at) VALUES (?, ?, ?, ?, ?)`,
		"k1", "backend", hash[:], "admin", micros(created)); err != nil {
		t.Fatalf("insert a key into schema 1: %v", err)
	}
	old.Close()

	db = openDB(t, path)
	d := testDialect(nil)
	d.Schema = dir
	s, err := New(ctx, db, db, d)
	if err != nil {
		t.Fatalf("New(current schema) over schema 1 = %v", err)
	}
	defer s.Close()
	k, err := s.APIKeyByHash(ctx, hash)
	if err != nil || k.ID != "k1" || k.Name != "backend" || k.Role != "admin" || !k.CreatedAt.Equal(created) {
		t.Fatalf("APIKeyByHash() after migration = %+v, %v, want k1 backend admin %v", k, err, created)
	}
	if revoked, err := s.APIKeyRevoked(ctx, hash); err != nil || revoked {
		t.Errorf("APIKeyRevoked() after migration = %v, %v, want false", revoked, err)
	}
	dup := store.APIKey{ID: "k2", Name: "backend", Hash: sha256.Sum256([]byte("other")), Role: "feed", CreatedAt: created}
	if err := s.AddAPIKey(ctx, dup, store.Actor{By: "test"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("AddAPIKey(name of a live key) after migration = %v, want ErrConflict", err)
	}
}
