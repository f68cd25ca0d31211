package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// A Template hands tests schemas that one setup function (in practice:
// opening a store, which migrates) has prepared, without running it for
// every test. Setup runs once per test binary on a template schema, and once
// on each schema of a pool that grows to the number of tests holding one at
// a time. When a test ends, its schema goes back to the pool as the template
// is: every backend still connected with the schema's DSN (which names the
// schema as application_name) is terminated, its catalog (tables, columns,
// constraints, indexes, functions, triggers, privileges) is compared with
// the template's, and its rows and sequences are replaced with the
// template's. A schema whose catalog differs is dropped instead. So each
// test gets the catalog, rows and sequences of a freshly set up schema, at
// the cost of a few DELETE and INSERT statements instead of the setup.
//
// A package using a Template runs its tests through Main, which drops the
// template and the pool at the end. Safe for concurrent use.
type Template struct {
	setup func(ctx context.Context, dsn string) error

	once  sync.Once
	err   error
	name  string // the template schema
	sig   string // its catalog signature
	reset []string
	// terminate ends the backends connected to schema $1 and, where
	// Postgres can (14 and later), waits until they are gone.
	terminate string

	mu   sync.Mutex
	free []string
}

var (
	mainMu    sync.Mutex
	inMain    bool
	templates []*Template
)

// NewTemplate returns a Template whose schemas are prepared by setup, given
// a DSN whose search_path is the schema.
func NewTemplate(setup func(ctx context.Context, dsn string) error) *Template {
	tp := &Template{setup: setup}
	mainMu.Lock()
	templates = append(templates, tp)
	mainMu.Unlock()
	return tp
}

// Main runs the tests and then drops the schemas of every Template; call it
// from TestMain as os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	mainMu.Lock()
	inMain = true
	mainMu.Unlock()
	code := m.Run()
	mainMu.Lock()
	defer mainMu.Unlock()
	for _, tp := range templates {
		if err := tp.drop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Schema returns a DSN whose search_path is a schema prepared by the
// template's setup, the test's own until it ends.
func (tp *Template) Schema(t testing.TB) string {
	t.Helper()
	db := DB(t)
	mainMu.Lock()
	ok := inMain
	mainMu.Unlock()
	if !ok {
		t.Fatal("pgtest: a Template needs the package's TestMain to return pgtest.Main(m), which drops its schemas")
	}
	tp.once.Do(func() { tp.err = tp.prepare(db) })
	if tp.err != nil {
		t.Fatalf("pgtest: template: %v", tp.err)
	}
	schema, err := tp.take(db)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := tp.give(db, schema); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return schemaDSN(schema)
}

// schemaDSN points search_path at schema and names the connections after
// it, so that give finds those a test left open.
func schemaDSN(schema string) string {
	return withParam(WithSearchPath(DSN(), schema), "application_name", schema)
}

// prepare sets up the template schema and records what resetting a copy
// takes.
func (tp *Template) prepare(db *sql.DB) error {
	ctx := context.Background()
	name, err := tp.create(db)
	if err != nil {
		return err
	}
	tp.name = name
	if tp.sig, err = signature(ctx, db, name); err != nil {
		return err
	}
	var version int
	if err := db.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		return err
	}
	wait := ""
	if version >= 140000 {
		wait = ", 10000"
	}
	tp.terminate = `SELECT pg_terminate_backend(pid` + wait + `) FROM pg_stat_activity
		WHERE application_name = $1 AND pid <> pg_backend_pid()`
	tp.reset, err = resetStatements(ctx, db, name)
	return err
}

// create makes a schema and runs setup on it.
func (tp *Template) create(db *sql.DB) (string, error) {
	ctx := context.Background()
	schema := newName()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", fmt.Errorf("CREATE SCHEMA %s: %w", schema, err)
	}
	if err := tp.setup(ctx, schemaDSN(schema)); err != nil {
		return "", errors.Join(fmt.Errorf("setup of schema %s: %w", schema, err), dropSchema(db, schema))
	}
	return schema, nil
}

// take returns a schema from the pool, or a new one.
func (tp *Template) take(db *sql.DB) (string, error) {
	tp.mu.Lock()
	if n := len(tp.free); n > 0 {
		schema := tp.free[n-1]
		tp.free = tp.free[:n-1]
		tp.mu.Unlock()
		return schema, nil
	}
	tp.mu.Unlock()
	return tp.create(db)
}

// give resets schema to the template and puts it back in the pool, or drops
// it if it no longer has the template's catalog.
func (tp *Template) give(db *sql.DB, schema string) error {
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, tp.terminate, schema); err != nil {
		return errors.Join(fmt.Errorf("closing the connections to schema %s: %w", schema, err), dropSchema(db, schema))
	}
	sig, err := signature(ctx, db, schema)
	if err != nil || sig != tp.sig {
		return errors.Join(err, dropSchema(db, schema))
	}
	from := quoteIdent(tp.name) + "."
	to := quoteIdent(schema) + "."
	batch := "BEGIN;\n" + strings.ReplaceAll(strings.ReplaceAll(strings.Join(tp.reset, ";\n"), "{to}.", to), "{from}.", from) + ";\nCOMMIT"
	if _, err := db.ExecContext(ctx, batch); err != nil {
		return errors.Join(fmt.Errorf("resetting schema %s: %w", schema, err), dropSchema(db, schema))
	}
	tp.mu.Lock()
	tp.free = append(tp.free, schema)
	tp.mu.Unlock()
	return nil
}

// drop drops the template and the pool; a schema a test still holds is
// dropped by that test's cleanup.
func (tp *Template) drop() error {
	tp.mu.Lock()
	schemas := tp.free
	tp.free = nil
	tp.mu.Unlock()
	if tp.name != "" {
		schemas = append(schemas, tp.name)
	}
	if len(schemas) == 0 {
		return nil
	}
	return dropSchema(admin, strings.Join(schemas, ", "))
}

// dropSchema drops schema, or several: a comma-separated list.
func dropSchema(db *sql.DB, schema string) error {
	if _, err := db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		return fmt.Errorf("DROP SCHEMA %s: %w", schema, err)
	}
	return nil
}

// signature digests the catalog of schema, its own name left out. It
// reaches the schema's objects through pg_depend and the catalogs' indexes,
// never by scanning pg_class or pg_attribute, which tests that create and
// drop schemas all day leave full of dead rows where autovacuum is off.
func signature(ctx context.Context, db *sql.DB, schema string) (string, error) {
	var sig string
	err := db.QueryRowContext(ctx, `
		WITH n AS (SELECT oid, nspacl FROM pg_namespace WHERE nspname = $1),
		owned AS (
			SELECT d.classid, d.objid, d.objsubid FROM n JOIN pg_depend d
				ON d.refclassid = 'pg_namespace'::regclass AND d.refobjid = n.oid
		),
		rel AS (
			SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.relrowsecurity, c.relacl
			FROM owned JOIN pg_class c ON owned.classid = 'pg_class'::regclass AND c.oid = owned.objid
		)
		SELECT md5(coalesce(string_agg(replace(d, quote_ident($1) || '.', ''), E'\n' ORDER BY d), ''))
		FROM (
			SELECT 'schema ' || coalesce(nspacl::text, '') AS d FROM n
			UNION ALL
			SELECT 'relation ' || relname || ' ' || relkind::text || ' ' || relpersistence::text || ' ' ||
				relrowsecurity || ' ' || coalesce(relacl::text, '')
			FROM rel
			UNION ALL
			SELECT 'column ' || rel.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' ||
				a.attnotnull || ' ' || a.attidentity::text || a.attgenerated::text || ' ' ||
				coalesce(pg_get_expr(ad.adbin, ad.adrelid), '') || ' ' || coalesce(a.attacl::text, '')
			FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid
			LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
			WHERE a.attnum > 0 AND NOT a.attisdropped
			UNION ALL
			SELECT 'constraint ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
			FROM rel JOIN pg_constraint co ON co.conrelid = rel.oid
			UNION ALL
			SELECT 'index ' || ic.relname || ' ' || pg_get_indexdef(i.indexrelid)
			FROM rel JOIN pg_index i ON i.indrelid = rel.oid JOIN pg_class ic ON ic.oid = i.indexrelid
			UNION ALL
			SELECT 'trigger ' || pg_get_triggerdef(tg.oid)
			FROM rel JOIN pg_trigger tg ON tg.tgrelid = rel.oid WHERE NOT tg.tgisinternal
			UNION ALL
			SELECT 'object ' || pg_describe_object(classid, objid, objsubid) FROM owned
			WHERE classid <> 'pg_class'::regclass
			UNION ALL
			SELECT 'function ' || pg_get_functiondef(objid) FROM owned WHERE classid = 'pg_proc'::regclass
		) AS catalog`, schema).Scan(&sig)
	if err != nil {
		return "", fmt.Errorf("catalog of schema %s: %w", schema, err)
	}
	return sig, nil
}

// resetStatements returns the statements that make a copy of the template
// schema's rows and sequences equal to the template's, with {to} standing
// for the copy and {from} for the template: DELETE from every table,
// referencing tables first, then the template's rows and sequence states.
func resetStatements(ctx context.Context, db *sql.DB, schema string) ([]string, error) {
	tables, err := tablesInDeleteOrder(ctx, db, schema)
	if err != nil {
		return nil, err
	}
	var stmts []string
	for _, tb := range tables {
		stmts = append(stmts, "DELETE FROM {to}."+quoteIdent(tb))
	}
	for _, tb := range slices.Backward(tables) {
		var rows bool
		q := "SELECT EXISTS (SELECT FROM " + quoteIdent(schema) + "." + quoteIdent(tb) + ")"
		if err := db.QueryRowContext(ctx, q).Scan(&rows); err != nil {
			return nil, fmt.Errorf("rows of %s.%s: %w", schema, tb, err)
		}
		if rows {
			stmts = append(stmts, "INSERT INTO {to}."+quoteIdent(tb)+" OVERRIDING SYSTEM VALUE SELECT * FROM {from}."+quoteIdent(tb))
		}
	}
	seqs, err := strings1(ctx, db, relationsOf+`AND c.relkind = 'S' ORDER BY 1`, schema)
	if err != nil {
		return nil, err
	}
	for _, sq := range seqs {
		// setval takes the sequence's name as text, so the placeholders
		// are quoted as a literal too.
		stmts = append(stmts, "SELECT setval('{to}."+quoteIdent(sq)+"', last_value, is_called) FROM {from}."+quoteIdent(sq))
	}
	return stmts, nil
}

// relationsOf selects the names of the relations of schema $1 (to be
// narrowed by relkind) through pg_depend, without scanning pg_class (see
// signature).
const relationsOf = `SELECT c.relname FROM pg_namespace n
	JOIN pg_depend d ON d.refclassid = 'pg_namespace'::regclass AND d.refobjid = n.oid AND d.classid = 'pg_class'::regclass
	JOIN pg_class c ON c.oid = d.objid
	WHERE n.nspname = $1 `

// tablesInDeleteOrder lists the tables of schema so that each comes before
// the tables its foreign keys reference.
func tablesInDeleteOrder(ctx context.Context, db *sql.DB, schema string) ([]string, error) {
	tables, err := strings1(ctx, db, relationsOf+`AND c.relkind IN ('r', 'p') ORDER BY 1`, schema)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT c.relname, r.relname FROM (`+relationsOf+`) AS t
		JOIN pg_class c ON c.relname = t.relname AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)
		JOIN pg_constraint co ON co.conrelid = c.oid AND co.contype = 'f'
		JOIN pg_class r ON r.oid = co.confrelid`, schema)
	if err != nil {
		return nil, fmt.Errorf("foreign keys of schema %s: %w", schema, err)
	}
	defer rows.Close()
	referenced := map[string][]string{} // table -> the tables referencing it
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return nil, err
		}
		if from != to {
			referenced[to] = append(referenced[to], from)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var order []string
	done := map[string]bool{}
	var visit func(string)
	visit = func(tb string) {
		if done[tb] {
			return
		}
		done[tb] = true
		for _, r := range referenced[tb] {
			visit(r)
		}
		order = append(order, tb)
	}
	for _, tb := range tables {
		visit(tb)
	}
	return order, nil
}

func strings1(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
