package pgtest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	os.Exit(Main(m))
}

// counts is a template whose setup makes a table with an identity column
// and a row, and a table referencing it.
var counts = NewTemplate(func(ctx context.Context, dsn string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `
		CREATE TABLE parent (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT NOT NULL);
		CREATE TABLE child (parent_id BIGINT NOT NULL REFERENCES parent (id));
		INSERT INTO parent (name) VALUES ('seed')`)
	return err
})

func schemaOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("search_path")
}

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// wantSeed checks that the schema holds the template's rows only and that
// the identity goes on from the template's.
func wantSeed(t *testing.T, db *sql.DB) {
	t.Helper()
	var n, children int
	var name string
	if err := db.QueryRow(`SELECT count(*), min(name), (SELECT count(*) FROM child) FROM parent`).Scan(&n, &name, &children); err != nil {
		t.Fatal(err)
	}
	if n != 1 || name != "seed" || children != 0 {
		t.Fatalf("parent has %d rows (first %q), child %d; want the seed row only", n, name, children)
	}
	var id int64
	if err := db.QueryRow(`INSERT INTO parent (name) VALUES ('next') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 2 {
		t.Fatalf("the next identity = %d, want 2", id)
	}
}

// TestTemplateSchemasAsNew: a schema handed out again after a test wrote
// to it holds the template's rows and sequences; one whose catalog a test
// changed is dropped, not handed out again; a connection the test left
// open is closed.
func TestTemplateSchemasAsNew(t *testing.T) {
	DB(t)
	var first string
	var pool *sql.DB // closed after the test's cleanup, not by it
	var leaked *sql.Conn
	t.Run("writes", func(t *testing.T) {
		dsn := counts.Schema(t)
		first = schemaOf(t, dsn)
		db := open(t, dsn)
		wantSeed(t, db)
		if _, err := db.Exec(`INSERT INTO child (parent_id) VALUES (1), (2)`); err != nil {
			t.Fatal(err)
		}
		var err error
		if pool, err = sql.Open("pgx", dsn); err != nil {
			t.Fatal(err)
		}
		if leaked, err = pool.Conn(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	var one int
	if err := leaked.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err == nil {
		t.Error("a connection left open on the schema still works after the test")
	} else {
		t.Logf("the connection left open: %v", err)
	}
	_ = leaked.Close()
	_ = pool.Close()
	// The schema goes to the next test, which finds the template's rows
	// (wantSeed); each change to the catalog makes it be dropped instead.
	for i, change := range []string{
		`ALTER TABLE child ADD COLUMN note TEXT`,
		`CREATE INDEX child_parent ON child (parent_id)`,
		`CREATE TABLE extra (x INT)`,
		`GRANT SELECT ON parent TO PUBLIC`,
		`CREATE FUNCTION f() RETURNS INT LANGUAGE sql AS 'SELECT 1'`,
		`ALTER TABLE parent ALTER COLUMN name DROP NOT NULL`,
	} {
		var got string
		t.Run(change, func(t *testing.T) {
			dsn := counts.Schema(t)
			got = schemaOf(t, dsn)
			db := open(t, dsn)
			wantSeed(t, db)
			if _, err := db.Exec(change); err != nil {
				t.Fatal(err)
			}
		})
		if i == 0 && got != first {
			t.Errorf("the next test got schema %s, want %s again", got, first)
		}
		var exists bool
		if err := DB(t).QueryRow(`SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, got).Scan(&exists); err != nil || exists {
			t.Errorf("after %q, schema %s exists = %v, %v; want dropped", change, got, exists, err)
		}
	}
}
