package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// TestSearchUsesIndex: the console's subject search reads the subjects'
// primary key as a range, never the whole table.
func TestSearchUsesIndex(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "t.db"))
	for _, q := range []store.SubjectQuery{
		{Prefix: "user0421", Limit: 51},
		{Prefix: "", After: "user050000@example.com", Limit: 51},
	} {
		q.Now = time.Now()
		plan, err := s.ExplainSubjects(context.Background(), q)
		t.Logf("Subjects(%q after %q):\n%s", q.Prefix, q.After, plan)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "SEARCH s USING") || strings.Contains(plan, "SCAN s") {
			t.Errorf("plan of Subjects(%q after %q) is not a range of an index:\n%s", q.Prefix, q.After, plan)
		}
	}
}
