package console_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/postgres"
)

var benchSessions = flag.Int("console.sessions", 1_000_000, "sessions BenchmarkPages loads into Postgres")

// BenchmarkPages times every page of the console, server and loopback
// HTTP, with -console.sessions sessions (four per user) and 200,000 audit
// records in Postgres, loaded with generate_series:
//
//	go test ./internal/console/ -run '^$' -bench Pages -benchtime 200x
//
// It logs the plan of the subject search, which must read an index.
func BenchmarkPages(b *testing.B) {
	dsn := pgtest.Schema(b)
	st, err := postgres.Open(context.Background(), dsn) // migrates the schema
	if err != nil {
		b.Fatal(err)
	}
	sid := load(b, dsn, *benchSessions)
	plan, err := st.ExplainSubjects(context.Background(), store.SubjectQuery{Prefix: "user01234", Limit: 51, Now: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("plan of the subject search:\n%s", plan)
	_ = st.Close()
	e := start(b, func(c *server.Config) { c.DB = dsn; c.DataDir = b.TempDir() })
	br := e.signedIn(b)
	users := *benchSessions / 4
	pages := []struct{ name, path string }{
		{"overview", "/console/"},
		{"users-prefix", "/console/users?q=user0" + fmt.Sprint(users / 20)[:1]},
		{"users-all", "/console/users?q="},
		{"users-next-page", "/console/users?q=user&after=" + url.QueryEscape(fmt.Sprintf("user%07d@example.com", users/2))},
		{"users-session-id", "/console/users?q=" + sid},
		{"user", "/console/user?sub=" + url.QueryEscape(fmt.Sprintf("user%07d@example.com", users/3))},
		{"verifiers", "/console/verifiers"},
		{"audit", "/console/audit"},
		{"audit-by-target", "/console/audit?target=" + url.QueryEscape(fmt.Sprintf("user%07d@example.com", 77))},
		{"audit-by-actor-action", "/console/audit?actor=api-key%3Aops&action=subject.revoke"},
		{"audit-last-hour", "/console/audit?from=" + url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))},
		{"alerts", "/console/alerts"},
		{"keys", "/console/keys"},
		{"confirm", "/console/confirm?seq=0"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				if res := br.get(p.path); res.StatusCode != http.StatusOK {
					b.Fatalf("GET %s = %d\n%.500s", p.path, res.StatusCode, res.body)
				}
			}
			// This process's CPU (the console and the client), not
			// Postgres's.
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// load fills the schema with n sessions of n/4 users, and 200,000 audit
// records (a tenth of them alerts), and returns a session id.
func load(b *testing.B, dsn string, n int) string {
	b.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UnixMicro()
	hour := time.Hour.Microseconds()
	start := time.Now()
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO subjects (subject, generation)
			SELECT 'user' || lpad(CAST(g AS TEXT), 7, '0') || '@example.com', 0 FROM generate_series(0, %d) g`, n/4-1),
		fmt.Sprintf(`INSERT INTO sessions (id, subject, device, claims, created_at, refreshed_at, expires_at)
			SELECT 'sess-' || CAST(g AS TEXT), 'user' || lpad(CAST(g / 4 AS TEXT), 7, '0') || '@example.com',
				'Firefox on Linux', '{"roles":["viewer"]}', %d - g, %d - g, %d + g FROM generate_series(0, %d) g`, now, now, now+720*hour, n-1),
		fmt.Sprintf(`INSERT INTO audit (at, actor, reason, action, target)
			SELECT %d - CAST(200000 - g AS BIGINT) * 100000, CASE WHEN g %% 3 = 0 THEN 'api-key:ops' ELSE 'api-key:support' END, 'bench',
				CASE WHEN g %% 10 = 0 THEN 'session.reuse' WHEN g %% 2 = 0 THEN 'subject.revoke' ELSE 'session.revoke' END,
				CASE WHEN g %% 2 = 0 THEN 'user' || lpad(CAST(g %% %d AS TEXT), 7, '0') || '@example.com' ELSE 'sess-' || CAST(g AS TEXT) END
			FROM generate_series(1, 200000) g`, now, max(n/4, 1)),
		`VACUUM ANALYZE subjects`, `VACUUM ANALYZE sessions`, `VACUUM ANALYZE audit`,
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			b.Fatalf("load: %v\n%s", err, q)
		}
	}
	b.Logf("loaded %d sessions of %d users and 200,000 audit records in %s", n, n/4, time.Since(start).Round(time.Millisecond))
	return "sess-" + fmt.Sprint(n/2)
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
