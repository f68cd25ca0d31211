// Package migrated gives tests a Postgres schema of their own that tegata's
// migrations have been applied to, from a pgtest.Template: the migrations
// run once per test binary and once per schema of its pool, not once per
// test. A package using it returns pgtest.Main(m) from its TestMain. Safe
// for concurrent use.
package migrated

import (
	"context"
	"testing"

	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/store/postgres"
)

var template = pgtest.NewTemplate(func(ctx context.Context, dsn string) error {
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	return s.Close()
})

// Schema returns a DSN whose search_path is a migrated schema, the test's
// own until it ends: as a node opening an empty schema would leave it.
func Schema(t testing.TB) string {
	t.Helper()
	return template.Schema(t)
}
