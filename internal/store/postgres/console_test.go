package postgres

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/store"
)

// TestSearchUsesIndex: the console's subject search reads the byte-order
// index (migration 0012), never the whole table, over 100,000 subjects,
// whether the prefix has an end or not and on a later page.
func TestSearchUsesIndex(t *testing.T) {
	dsn := pgtest.Schema(t)
	s := open(t, dsn)
	t.Cleanup(func() { _ = s.Close() })
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `INSERT INTO subjects (subject, generation)
		SELECT 'user' || lpad(CAST(g AS TEXT), 6, '0') || '@example.com', 0 FROM generate_series(1, 100000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE subjects`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.SubjectQuery{
		{Prefix: "user0421", Limit: 51},
		{Prefix: "", After: "user050000@example.com", Limit: 51},
		{Prefix: "user\U0010FFFF", Limit: 51},
	} {
		q.Now = time.Now()
		plan, err := s.ExplainSubjects(ctx, q)
		t.Logf("Subjects(%q after %q):\n%s", q.Prefix, q.After, plan)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "subjects_bytes") || strings.Contains(plan, "Seq Scan on subjects") {
			t.Errorf("plan of Subjects(%q after %q) does not read subjects_bytes:\n%s", q.Prefix, q.After, plan)
		}
	}
}
