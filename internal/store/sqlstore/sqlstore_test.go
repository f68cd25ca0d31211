package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

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

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	v1 := fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);\nINSERT INTO a VALUES (1);\n")}}
	v2 := fstest.MapFS{
		"0001_a.sql": v1["0001_a.sql"],
		"0002_b.sql": {Data: []byte("INSERT INTO a VALUES (2);\n")},
	}
	steps := []struct {
		name    string
		fs      fstest.MapFS
		wantErr bool
		rows    int
	}{
		{"first open applies 1", v1, false, 1},
		{"same schema again applies nothing", v1, false, 1},
		{"new migration applies 2 only", v2, false, 2},
		{"older build refuses a newer database", v1, true, 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			db := openDB(t, path)
			s, err := New(ctx, db, db, testDialect(st.fs))
			if (err != nil) != st.wantErr {
				t.Fatalf("New() = %v, want error %v", err, st.wantErr)
			}
			if s != nil {
				defer s.Close()
			} else {
				defer db.Close()
			}
			var rows int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM a").Scan(&rows); err != nil || rows != st.rows {
				t.Errorf("rows in a = %d, %v, want %d", rows, err, st.rows)
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
