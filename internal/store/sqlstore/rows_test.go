package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"testing"
)

// TestRowsSQLite reads tables back through each form SQLite gets (a VALUES
// list, json_each for a table too big for one), every value as it went in.
func TestRowsSQLite(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "r.db"))
	defer db.Close()
	str := func(s string) *string { return &s }
	num := func(n int64) *int64 { return &n }
	texts := []string{"", "plain", "with\x00nul", "ユーザー \"quoted\" \\ ,[]", "\xff\xfe not UTF-8"}
	nullTexts := []*string{nil, str(""), str("x"), nil, str("{\"a\":1}")}
	ints := []int64{0, -1, math.MaxInt64, math.MinInt64, 42}
	nullInts := []*int64{nil, num(0), num(-7), num(math.MaxInt64), nil}
	blobs := [][]byte{nil, {}, {0, 1, 2}, bytes.Repeat([]byte{0xff}, 32), []byte("b")}
	idx := []int64{0, 1, 2, 3, 4}
	table := func() *rows {
		return newRows("t", len(idx)).ints("i", idx).text("s", texts).nullText("ns", nullTexts).
			ints("n", ints).nullInts("nn", nullInts).blobs("b", blobs)
	}
	forms := map[string]func(*rows) (string, []any){
		"values":    (*rows).values,
		"json_each": (*rows).jsonEach,
	}
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			from, args := form(table())
			rs, err := db.QueryContext(context.Background(), `SELECT t.i, t.s, t.ns, t.n, t.nn, t.b FROM `+from+` ORDER BY t.i`, args...)
			if err != nil {
				t.Fatalf("query over %s = %v", from, err)
			}
			defer rs.Close()
			got := 0
			for ; rs.Next(); got++ {
				var (
					i, n int64
					s    string
					ns   sql.NullString
					nn   sql.NullInt64
					b    []byte
				)
				if err := rs.Scan(&i, &s, &ns, &n, &nn, &b); err != nil {
					t.Fatal(err)
				}
				// database/sql reads an empty blob back as nil: NULL is
				// told apart in SQL (the count below), not here.
				want := fmt.Sprintf("%q %v %d %v %x", texts[i], deref(nullTexts[i]), ints[i], derefInt(nullInts[i]), blobs[i])
				gotS := fmt.Sprintf("%q %v %d %v %x", s, nullString(ns), n, nullInt(nn), b)
				if gotS != want {
					t.Errorf("row %d = %s, want %s", i, gotS, want)
				}
			}
			if got != len(idx) || rs.Err() != nil {
				t.Fatalf("read %d rows (%v), want %d", got, rs.Err(), len(idx))
			}
			from, args = form(table())
			var nulls int
			if err := db.QueryRow(`SELECT COUNT(*) FROM `+from+` WHERE t.b IS NULL`, args...).Scan(&nulls); err != nil || nulls != 1 {
				t.Errorf("NULL blobs = %d, %v, want 1 (nil is NULL, empty is not)", nulls, err)
			}
		})
	}
	from, args := Dialect{}.from(newRows("e", 0).text("x", nil))
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM `+from, args...).Scan(&n); err != nil || n != 0 {
		t.Errorf("empty table: %d rows, %v, want 0", n, err)
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func derefInt(n *int64) any {
	if n == nil {
		return nil
	}
	return *n
}

func nullString(s sql.NullString) any {
	if !s.Valid {
		return nil
	}
	return s.String
}

func nullInt(n sql.NullInt64) any {
	if !n.Valid {
		return nil
	}
	return n.Int64
}
