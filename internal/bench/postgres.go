package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// schema is a Postgres schema created for one run, so runs never see each
// other's data and leave nothing behind.
type schema struct {
	name string
	base string // the database URL without search_path
	dsn  string // base with search_path set to name
}

// newSchema creates a uniquely named schema in the database at base.
func newSchema(ctx context.Context, base string) (*schema, error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	s := &schema{name: "tegata_bench_" + hex.EncodeToString(b), base: base}
	dsn, err := withSearchPath(base, s.name)
	if err != nil {
		return nil, err
	}
	s.dsn = dsn
	if err := s.exec(ctx, "CREATE SCHEMA "+s.name); err != nil {
		return nil, fmt.Errorf("bench: Postgres at %s: %w", redact(base), err)
	}
	return s, nil
}

// drop removes the schema and everything in it. It runs at cleanup, when
// the run's own context may be over, so it takes a fresh one.
func (s *schema) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.exec(ctx, "DROP SCHEMA "+s.name+" CASCADE")
}

func (s *schema) exec(ctx context.Context, sql string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, s.base)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withSearchPath adds search_path to a postgres:// URL or a key=value DSN.
func withSearchPath(dsn, name string) (string, error) { return withParam(dsn, "search_path", name) }

// withParam sets a connection parameter in a postgres:// URL or a
// key=value DSN; value must need no quoting.
func withParam(dsn, key, value string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn + " " + key + "=" + value, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("bench: Postgres URL: %w", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// backends follows the Postgres processes that work for connections named
// app (application_name) and the server's own processes (WAL writer,
// checkpointer, autovacuum), leaving out other clients of a shared server.
// It returns the finder and a function that closes its connection; a
// failed look-up is reported to logf and finds nothing.
func (s *schema) backends(ctx context.Context, app string, logf func(string, ...any)) (func() []int, func(), error) {
	conn, err := pgx.Connect(ctx, s.base)
	if err != nil {
		return nil, nil, err
	}
	find := func() []int {
		qctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rows, err := conn.Query(qctx, `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 OR backend_type <> 'client backend'`, app)
		var pids []int32
		if err == nil {
			pids, err = pgx.CollectRows(rows, pgx.RowTo[int32])
		}
		if err != nil {
			logf("bench: listing the Postgres backends of %s: %v", app, err)
			return nil
		}
		out := make([]int, len(pids))
		for i, p := range pids {
			out[i] = int(p)
		}
		return out
	}
	return find, func() { _ = conn.Close(context.Background()) }, nil
}

// redact keeps a password out of messages.
func redact(dsn string) string {
	if i := strings.LastIndex(dsn, "@"); i >= 0 {
		return "…" + dsn[i:]
	}
	return dsn
}
