// Package pgtest gives tests a Postgres schema of their own: an empty one
// (Schema), or one a Template's setup has prepared, set up once per test
// binary rather than once per test. The DSN comes from TEGATA_TEST_POSTGRES
// (default the local test database); without a reachable Postgres a test
// fails under CI=true and is skipped otherwise. Safe for concurrent use.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// DefaultDSN is the Postgres every machine of this project runs.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	adminOnce sync.Once
	admin     *sql.DB
	adminErr  error
)

// DSN returns the configured test database URL.
func DSN() string {
	if dsn := os.Getenv("TEGATA_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// DB returns a pool on the test database shared by the tests of a package,
// or fails/skips the test when Postgres is unreachable.
func DB(t testing.TB) *sql.DB {
	t.Helper()
	adminOnce.Do(func() {
		admin, adminErr = sql.Open("pgx", DSN())
		if adminErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		adminErr = admin.PingContext(ctx)
	})
	if adminErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Postgres at %s unreachable under CI=true: %v", DSN(), adminErr)
		}
		t.Skipf("Postgres at %s unreachable (set TEGATA_TEST_POSTGRES; under CI=true this fails): %v", DSN(), adminErr)
	}
	return admin
}

// Schema creates a fresh schema, dropped at cleanup, and returns a DSN whose
// search_path points at it.
func Schema(t testing.TB) string {
	t.Helper()
	db := DB(t)
	schema := newName()
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("CREATE SCHEMA %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if err := dropSchema(db, schema); err != nil {
			t.Error(err)
		}
	})
	return WithSearchPath(DSN(), schema)
}

// newName returns a schema name no other test uses.
func newName() string {
	return "tegata_test_" + strings.ToLower(rand.Text()[:12])
}

// WithSearchPath adds search_path to a URL or key=value DSN.
func WithSearchPath(dsn, schema string) string {
	return withParam(dsn, "search_path", schema)
}

// withParam sets a connection parameter in a URL or key=value DSN.
func withParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set(key, value)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " " + key + "=" + value
}
