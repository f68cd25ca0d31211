package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/sqlstore"
	"github.com/tegata-dev/tegata/internal/store/storetest"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "tegata.db"))
	})
}

// TestConformanceNodes: three stores on one file, each with its own writer
// connection, as three processes would have. SQLite's file lock
// (BEGIN IMMEDIATE, busy_timeout) must serialise their writers as the
// in-process single writer does.
func TestConformanceNodes(t *testing.T) {
	storetest.RunNodes(t, func(t *testing.T) []store.Store {
		path := filepath.Join(t.TempDir(), "tegata.db")
		return []store.Store{open(t, path), open(t, path), open(t, path)}
	})
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "tegata.db")
	s := open(t, path)
	defer s.Close()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Stat(%q) = %v", path, err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("mode of %q = %v, want 0600", path, mode)
	}
}

// TestReopen checks that data and the log head survive a restart and that
// migrating an up-to-date database changes nothing.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tegata.db")
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	s := open(t, path)
	e, err := s.RevokeSubject(ctx, store.SubjectRevocation{Subject: "alice", Now: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatalf("RevokeSubject() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	s = open(t, path)
	defer s.Close()
	if h, err := s.Head(ctx); err != nil || h != e.Seq {
		t.Errorf("Head() after reopen = %d, %v, want %d", h, err, e.Seq)
	}
	e2, err := s.RevokeSubject(ctx, store.SubjectRevocation{Subject: "alice", Now: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil || e2.Seq != e.Seq+1 || e2.Generation != 2 {
		t.Errorf("RevokeSubject() after reopen = %+v, %v, want seq %d, generation 2", e2, err, e.Seq+1)
	}
}

// TestMigrationMarksInstalledKeys: keys installed at start before the
// installed_as column existed are found by the audit record of their
// creation, so a later start with a new secret retires them too.
func TestMigrationMarksInstalledKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tegata.db")
	if err := createFile(path); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path, writer))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	// The schema as it was before installed_as: every migration before it.
	old := fstest.MapFS{}
	names, err := fs.Glob(schema, "schema/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		base := strings.TrimPrefix(name, "schema/")
		if base >= "0004_installed_api_keys.sql" {
			continue
		}
		b, err := fs.ReadFile(schema, name)
		if err != nil {
			t.Fatal(err)
		}
		old[base] = &fstest.MapFile{Data: b}
	}
	d := dialect()
	d.Schema = old
	s, err := sqlstore.New(ctx, db, db, d)
	if err != nil {
		t.Fatalf("migrating to version 2 = %v", err)
	}
	keys := []struct{ id, name, reason, want string }{
		{"k1", "bootstrap-0a0b0c0d", "installed at start (bootstrap key)", "bootstrap"},
		{"k2", "feed-01020304", "installed at start (feed key)", "feed"},
		{"k3", "bootstrap-lookalike", "made by an operator", ""},
	}
	for _, k := range keys {
		if _, err := db.ExecContext(ctx, `INSERT INTO api_keys (id, name, hash, role, created_at) VALUES (?, ?, ?, 'admin', 1)`,
			k.id, k.name, []byte(k.id+strings.Repeat("x", 30))); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO audit (at, actor, reason, action, target) VALUES (1, 'system', ?, 'apikey.create', ?)`,
			k.reason, k.name+" ("+k.id+")"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, path)
	defer s2.Close()
	for _, k := range keys {
		got, err := s2.APIKeyByHash(ctx, [32]byte([]byte(k.id+strings.Repeat("x", 30))))
		if err != nil || got.InstalledAs != k.want {
			t.Errorf("APIKeyByHash(%s).InstalledAs = %q, %v; want %q", k.id, got.InstalledAs, err, k.want)
		}
	}
}

// A notice of a head this process appended itself wakes nobody again (its
// own commit woke them); a notice beyond it does.
func TestNotifiedSkipsOwnAppends(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "t.db"))
	defer s.Close()
	wake, stop := s.Subscribe()
	defer stop()
	now := time.Now()
	if _, err := s.RevokeSubject(ctx, store.SubjectRevocation{Subject: "alice", Now: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatalf("RevokeSubject() = %v", err)
	}
	select {
	case <-wake:
	default:
		t.Fatal("no wake-up after an append")
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		notice int64
		want   bool
	}{
		{"older head", head - 1, false},
		{"own head", head, false},
		{"another node's", head + 1, true},
	} {
		s.Notified(tt.notice, false)
		got := false
		select {
		case <-wake:
			got = true
		default:
		}
		if got != tt.want {
			t.Errorf("%s: Notified(%d) after own head %d woke = %v, want %v", tt.name, tt.notice, head, got, tt.want)
		}
	}
}

// TestMigrations runs storetest.Migrations on the embedded schema.
func TestMigrations(t *testing.T) {
	sub, err := fs.Sub(schema, "schema")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Migrations(t, sub, func(t *testing.T) storetest.Database {
		path := filepath.Join(t.TempDir(), "tegata.db")
		if err := createFile(path); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", dsn(path, reader))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return storetest.Database{DB: db, Open: func(migrations fs.FS) (store.Store, error) {
			w, err := sql.Open("sqlite", dsn(path, writer))
			if err != nil {
				return nil, err
			}
			w.SetMaxOpenConns(1)
			d := dialect()
			d.Schema = migrations
			s, err := sqlstore.New(context.Background(), w, w, d)
			if err != nil {
				_ = w.Close()
				return nil, err
			}
			return s, nil
		}}
	})
}
