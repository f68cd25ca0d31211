package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
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
