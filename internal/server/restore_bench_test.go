package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/postgres"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
)

// BenchmarkResetAfterRestore measures what a start on a restored database
// adds with the cutoff policy: ending 100,000 live sessions (and the
// rest of the reset) in one transaction.
//
//	go test ./internal/server -run '^$' -bench ResetAfterRestore -benchtime 3x
func BenchmarkResetAfterRestore(b *testing.B) {
	const sessions = 100000
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			st, db := openBench(b, backend)
			defer st.Close()
			defer db.Close()
			epoch := "e0"
			if _, err := st.ClaimCluster(ctx, store.ClusterInfo{Issuer: "https://auth.test", Epoch: epoch, CreatedAt: time.Now()}); err != nil {
				b.Fatal(err)
			}
			for i := range b.N {
				b.StopTimer()
				insertSessions(b, db, fmt.Sprint(i), sessions)
				next := fmt.Sprint("e", i+1)
				b.StartTimer()
				_, did, err := st.ResetAfterRestore(ctx, store.RestoreReset{OldEpoch: epoch, Epoch: next, Now: time.Now(), Cutoff: true})
				if err != nil || did.Sessions != sessions {
					b.Fatalf("ResetAfterRestore = %+v, %v; want %d sessions ended", did, err, sessions)
				}
				epoch = next
			}
		})
	}
}

func openBench(b *testing.B, backend string) (store.Store, *sql.DB) {
	ctx := context.Background()
	if backend == "sqlite" {
		path := filepath.Join(b.TempDir(), "bench.db")
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			b.Fatal(err)
		}
		return st, db
	}
	dsn := pgtest.Schema(b)
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		b.Fatal(err)
	}
	return st, db
}

// insertSessions adds n live sessions in one transaction, straight into
// the table: the setup, not what is measured.
func insertSessions(b *testing.B, db *sql.DB, prefix string, n int) {
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	for i := range n {
		if _, err := tx.Exec(`INSERT INTO sessions (id, subject, device, created_at, refreshed_at, expires_at)
			VALUES ('` + prefix + `-` + fmt.Sprint(i) + `', 'user', 'device', 1, 1, 9000000000000000)`); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
