package cli

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/postgres"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
)

// TestNewerSchemaRefused: `tegata serve` on a database a newer tegata has
// migrated (its schema_version holds a migration this build lacks)
// exits 1 with a message that says so and what to do, and changes
// nothing.
func TestNewerSchemaRefused(t *testing.T) {
	tests := []struct {
		name string
		// prepare creates the database and returns how to reach it with
		// database/sql and the variables `tegata serve` is run with.
		prepare func(t *testing.T) (driver, dsn string, env map[string]string)
	}{
		{"sqlite", func(t *testing.T) (string, string, map[string]string) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tegata.db")
			s, err := sqlite.Open(context.Background(), path)
			closeStore(t, s, err)
			return "sqlite", path, map[string]string{"TEGATA_DATA": dir}
		}},
		{"postgres", func(t *testing.T) (string, string, map[string]string) {
			dsn := pgtest.Schema(t)
			s, err := postgres.Open(context.Background(), dsn)
			closeStore(t, s, err)
			return "pgx", dsn, map[string]string{"TEGATA_DB": dsn, "TEGATA_DATA": t.TempDir()}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			driver, dsn, env := tc.prepare(t)
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var current int64
			if err := db.QueryRow(`SELECT MAX(version) FROM schema_version`).Scan(&current); err != nil {
				t.Fatal(err)
			}
			newer := current + 1
			if _, err := db.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (` +
				itoa(newer) + `, 1796000000000000)`); err != nil {
				t.Fatal(err)
			}
			env["TEGATA_ADDR"] = "127.0.0.1:0"
			code, out := runCLI([]string{"serve"}, env)
			for _, want := range []string{"schema is newer than this tegata", "has migration " + itoa(newer), "knows versions 1-" + itoa(current),
				"applied on 2026-", "restore the backup taken before the upgrade"} {
				if !strings.Contains(out, want) {
					t.Errorf("tegata serve on a newer schema: output lacks %q:\n%s", want, out)
				}
			}
			if code != 1 {
				t.Errorf("tegata serve on a newer schema exited %d, want 1", code)
			}
			var after int64
			if err := db.QueryRow(`SELECT MAX(version) FROM schema_version`).Scan(&after); err != nil || after != newer {
				t.Errorf("schema version after the refusal = %d, %v; want %d untouched", after, err, newer)
			}
		})
	}
}

func closeStore(t *testing.T, s store.Store, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
