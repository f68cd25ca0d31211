package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

func TestRebind(t *testing.T) {
	tests := []struct {
		name   string
		dollar bool
		in     string
		want   string
	}{
		{"sqlite keeps ?", false, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = ? AND c = ?"},
		{"postgres numbers them", true, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"no placeholders", true, "SELECT 1", "SELECT 1"},
		{"ten and more", true, strings.Repeat("?,", 10) + "?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Dialect{DollarPlaceholders: tt.dollar}).rebind(tt.in); got != tt.want {
				t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"empty", "", nil},
		{"comments only", "-- a; b\n\n-- c\n", nil},
		{"two statements", "CREATE TABLE a (x INT);\n-- why; because\nCREATE TABLE b (\n\ty INT\n);\n",
			[]string{"CREATE TABLE a (x INT)", "CREATE TABLE b (\n\ty INT\n)"}},
		{"last without semicolon", "SELECT 1;\nSELECT 2", []string{"SELECT 1", "SELECT 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitStatements(tt.src); !slices.Equal(got, tt.want) {
				t.Errorf("splitStatements(%q) = %q, want %q", tt.src, got, tt.want)
			}
		})
	}
}

func TestLoadMigrationsRejects(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
	}{
		{"no version", fstest.MapFS{"init.sql": {Data: []byte("SELECT 1;")}}},
		{"version zero", fstest.MapFS{"0000_init.sql": {Data: []byte("SELECT 1;")}}},
		{"same version twice", fstest.MapFS{
			"0001_a.sql": {Data: []byte("SELECT 1;")},
			"01_b.sql":   {Data: []byte("SELECT 1;")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := loadMigrations(tt.fs); err == nil {
				t.Errorf("loadMigrations(%v) = nil error, want one", tt.fs)
			}
		})
	}
}

// testDialect runs migrations from fsys on a real SQLite file.
func testDialect(fsys fstest.MapFS) Dialect {
	return Dialect{
		Name:   "sqlite",
		Schema: fsys,
		IsUnique: func(err error) bool {
			var e *sqlite.Error
			return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
		},
	}
}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_txlock=immediate")
	if err != nil {
		t.Fatalf("sql.Open() = %v", err)
	}
	db.SetMaxOpenConns(1)
	return db
}

// TestMigrate: migrations are applied by the set of versions the database
// has, not by its highest: a build that adds a migration numbered below one
// already applied applies it, and a build that lacks an applied one refuses
// to start, naming it, and changes nothing.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	schema := func(versions ...int) fstest.MapFS {
		fsys := fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);\nINSERT INTO a VALUES (1);\n")}}
		for _, v := range versions {
			fsys[fmt.Sprintf("%04d_m.sql", v)] = &fstest.MapFile{Data: []byte(fmt.Sprintf("INSERT INTO a VALUES (%d);\n", v))}
		}
		return fsys
	}
	steps := []struct {
		name    string
		fs      fstest.MapFS
		applied []int    // rows of a in the order the migrations ran
		refused []string // what the refusal must say; nil: no refusal
	}{
		{"fresh database gets every migration", schema(2, 4), []int{1, 2, 4}, nil},
		{"a migration numbered below the newest applied is applied", schema(2, 3, 4), []int{1, 2, 4, 3}, nil},
		{"nothing missing changes nothing", schema(2, 3, 4), []int{1, 2, 4, 3}, nil},
		{"an applied migration this build lacks is refused", schema(2, 4), []int{1, 2, 4, 3},
			[]string{"has migration 3 (applied on 20", "knows versions 1-2, 4"}},
		{"an applied migration newer than any known is refused", schema(2, 3), []int{1, 2, 4, 3},
			[]string{"has migration 4 (applied on 20", "knows versions 1-3"}},
		{"every unknown migration is named", schema(2), []int{1, 2, 4, 3},
			[]string{"has migrations 3 (applied on 20", "), 4 (applied on 20", "knows versions 1-2", "restore the backup"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			db := openDB(t, path)
			s, err := New(ctx, db, db, testDialect(st.fs))
			if s != nil {
				defer s.Close()
			} else {
				defer db.Close()
			}
			checkRefusal(t, err, st.refused)
			if got := intColumn(t, db, "SELECT x FROM a ORDER BY rowid"); !slices.Equal(got, st.applied) {
				t.Errorf("migrations applied, in order = %v, want %v", got, st.applied)
			}
		})
	}
}

func checkRefusal(t *testing.T, err error, want []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("New() = %v, want no error", err)
		}
		return
	}
	if !errors.Is(err, ErrSchemaNewer) {
		t.Fatalf("New() = %v, want ErrSchemaNewer", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("New() = %q, want it to say %q", err, w)
		}
	}
}

func intColumn(t *testing.T, db *sql.DB, q string) []int {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var x int
		if err := rows.Scan(&x); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		got = append(got, x)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return got
}

func TestVersionRanges(t *testing.T) {
	tests := []struct {
		name string
		in   []int64
		want string
	}{
		{"none", nil, "none"},
		{"one", []int64{1}, "1"},
		{"a run", []int64{1, 2, 3}, "1-3"},
		{"a gap", []int64{1, 2, 3, 5, 7, 8}, "1-3, 5, 7-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionRanges(tt.in); got != tt.want {
				t.Errorf("versionRanges(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMigrateRollsBack(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "m.db"))
	defer db.Close()
	bad := fstest.MapFS{
		"0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);\n")},
		"0002_b.sql": {Data: []byte("INSERT INTO missing VALUES (1);\n")},
	}
	if _, err := New(ctx, db, db, testDialect(bad)); err == nil {
		t.Fatalf("New() with a failing migration = nil error, want one")
	}
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('a', 'schema_version')").Scan(&n)
	if err != nil || n != 0 {
		t.Errorf("tables left after a failed migration = %d, %v, want 0", n, err)
	}
}

func TestCarry(t *testing.T) {
	tests := []struct {
		name     string
		deferred []deferredWrite
		q        string
		args     []any
		wantQ    string
		wantArgs []any
	}{
		{"nothing put off", nil, "SELECT ?", []any{1}, "SELECT ?", []any{1}},
		{"one write", []deferredWrite{{"UPDATE a SET x = ?", []any{"x"}}}, "SELECT ?", []any{1},
			"WITH deferred0 AS (UPDATE a SET x = ?) SELECT ?", []any{"x", 1}},
		{"two writes onto a WITH", []deferredWrite{{"INSERT INTO a VALUES (?)", []any{1}}, {"DELETE FROM b WHERE y = ?", []any{2}}},
			"WITH c AS (SELECT ?) SELECT * FROM c", []any{3},
			"WITH deferred0 AS (INSERT INTO a VALUES (?)), deferred1 AS (DELETE FROM b WHERE y = ?), c AS (SELECT ?) SELECT * FROM c", []any{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := &tx{deferred: tt.deferred}
			q, args := tx.carry(tt.q, tt.args)
			if q != tt.wantQ || !slices.Equal(args, tt.wantArgs) {
				t.Errorf("carry(%q, %v) = %q, %v, want %q, %v", tt.q, tt.args, q, args, tt.wantQ, tt.wantArgs)
			}
			if len(tx.deferred) != 0 {
				t.Errorf("carry left %d writes put off", len(tx.deferred))
			}
		})
	}
}

func TestTimeoutFor(t *testing.T) {
	tests := []struct {
		rows int
		want time.Duration
	}{
		{0, batchTimeout},
		{1, batchTimeout},
		{maxBatch, batchTimeout},
		{maxBatch + 1, 2 * batchTimeout},
		{10_000, 10 * batchTimeout},
	}
	for _, tt := range tests {
		if got := timeoutFor(tt.rows); got != tt.want {
			t.Errorf("timeoutFor(%d) = %v, want %v", tt.rows, got, tt.want)
		}
	}
}
