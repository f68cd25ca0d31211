package storetest

import (
	"context"
	"database/sql"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/tegata-dev/tegata/internal/store"
)

// A Database is one new, empty database for Migrations. DB reads its
// schema_version; Open opens a store on it (a pool of its own each call)
// that migrates with the migrations in schema, some of the backend's.
type Database struct {
	DB   *sql.DB
	Open func(schema fs.FS) (store.Store, error)
}

// gap are two migrations numbered below the schema's newest: a database
// migrated by a build that had the newest but not them lacks them.
var gap = []string{"0011_", "0012_"}

// Migrations checks the backend's migrator on its real schema (its
// NNNN_name.sql files): a fresh database gets every migration; one that
// lacks migrations below its newest gets them; one with a migration this
// build lacks is refused, naming it, and left as it was; several stores
// opening such a database at once apply each missing migration once.
// fresh returns a new, empty database for one subtest.
func Migrations(t *testing.T, schema fs.FS, fresh func(t *testing.T) Database) {
	all := versions(t, schema)
	tests := []struct {
		name string
		fn   func(t *testing.T, d Database)
	}{
		{"Fresh", func(t *testing.T, d Database) {
			openClose(t, d, schema)
			wantApplied(t, d, all)
		}},
		{"Gap", func(t *testing.T, d Database) {
			before := without(t, schema, gap...)
			openClose(t, d, before)
			wantApplied(t, d, versions(t, before))
			s := open(t, d, schema)
			defer s.Close()
			wantApplied(t, d, all)
			ns := newSession("s1", "alice", t0)
			ns.Session.Binding = testBinding(store.BindingDPoP, "k1")
			create(t, s, ns) // needs 0011's columns
		}},
		{"Unknown", func(t *testing.T, d Database) {
			openClose(t, d, schema)
			s, err := d.Open(without(t, schema, gap[1]))
			if err == nil {
				s.Close()
				t.Fatalf("Open() by a build without %s on a database with it = nil error, want a refusal", gap[1])
			}
			v := strings.TrimLeft(strings.TrimSuffix(gap[1], "_"), "0")
			for _, want := range []string{"has migration " + v + " (applied on", "does not know", "restore the backup"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open() = %q, want it to say %q", err, want)
				}
			}
			wantApplied(t, d, all)
		}},
		{"ConcurrentOpen", func(t *testing.T, d Database) {
			openClose(t, d, without(t, schema, gap...))
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() {
					s, err := d.Open(schema)
					if err == nil {
						err = s.Close()
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Open() #%d of %d at once = %v", i, len(errs), err)
				}
			}
			wantApplied(t, d, all)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, fresh(t)) })
	}
}

func open(t *testing.T, d Database, schema fs.FS) store.Store {
	t.Helper()
	s, err := d.Open(schema)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	return s
}

func openClose(t *testing.T, d Database, schema fs.FS) {
	t.Helper()
	if err := open(t, d, schema).Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
}

// wantApplied checks that schema_version holds exactly the versions want.
func wantApplied(t *testing.T, d Database, want []int64) {
	t.Helper()
	rows, err := d.DB.QueryContext(context.Background(), `SELECT version FROM schema_version ORDER BY version`)
	if err != nil {
		t.Fatalf("reading schema_version: %v", err)
	}
	defer rows.Close()
	var got []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("reading schema_version: %v", err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading schema_version: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("schema_version = %v, want %v", got, want)
	}
}

// versions returns the versions of schema's migrations, in order.
func versions(t *testing.T, schema fs.FS) []int64 {
	t.Helper()
	names, err := fs.Glob(schema, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	vs := make([]int64, 0, len(names))
	for _, name := range names {
		prefix, _, _ := strings.Cut(name, "_")
		v, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", name, err)
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// without returns schema's migrations but those whose names start with one
// of prefixes, each of which must name one.
func without(t *testing.T, schema fs.FS, prefixes ...string) fs.FS {
	t.Helper()
	names, err := fs.Glob(schema, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	kept := fstest.MapFS{}
	for _, name := range names {
		if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		b, err := fs.ReadFile(schema, name)
		if err != nil {
			t.Fatal(err)
		}
		kept[name] = &fstest.MapFile{Data: b}
	}
	if len(kept) != len(names)-len(prefixes) {
		t.Fatalf("the schema has no migration for one of %q", prefixes)
	}
	return kept
}
