// Package pgtest gives tests a Postgres schema of their own: the DSN comes
// from TEGATA_TEST_POSTGRES (default the local test database); without a
// reachable Postgres a test fails under CI=true and is skipped otherwise.
// Safe for concurrent use.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
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
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "tegata_test_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("CREATE SCHEMA %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("DROP SCHEMA %s: %v", schema, err)
		}
	})
	return WithSearchPath(DSN(), schema)
}

// WithSearchPath adds search_path to a URL or key=value DSN.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
