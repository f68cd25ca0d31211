package sqlstore

import (
	"encoding/hex"
	"strconv"
	"strings"
)

// rows is a table passed to one statement as parameters, so that a batch
// reads or writes any number of rows with one statement. On Postgres each
// column is one array parameter, unnested: the statement's text, and so
// its prepared plan, is the same whatever the number of rows. On SQLite,
// where a statement costs no round trip but parsing JSON is slow, the table
// is a VALUES list of one parameter per value (about three times cheaper
// than json_each); a table too large for SQLite's 32,766 parameters (a bulk
// revocation) is one JSON parameter read with json_each instead, text and
// blobs hex-encoded so that every byte survives.
//
// Columns are added with text, nullText, ints, nullInts and blobs, each a
// slice of the same length.
type rows struct {
	alias string
	n     int
	cols  []column
}

type colKind int

const (
	colText colKind = iota
	colNullText
	colInt
	colNullInt
	colBlob
)

type column struct {
	name string
	kind colKind
	vals any // []string, []*string, []int64, []*int64 or [][]byte (nil is NULL)
}

func newRows(alias string, n int) *rows { return &rows{alias: alias, n: n} }

func (r *rows) add(name string, kind colKind, n int, vals any) *rows {
	if n != r.n {
		panic("sqlstore: column " + name + " has " + strconv.Itoa(n) + " rows, want " + strconv.Itoa(r.n))
	}
	r.cols = append(r.cols, column{name: name, kind: kind, vals: vals})
	return r
}

func (r *rows) text(name string, v []string) *rows      { return r.add(name, colText, len(v), v) }
func (r *rows) nullText(name string, v []*string) *rows { return r.add(name, colNullText, len(v), v) }
func (r *rows) ints(name string, v []int64) *rows       { return r.add(name, colInt, len(v), v) }
func (r *rows) nullInts(name string, v []*int64) *rows  { return r.add(name, colNullInt, len(v), v) }
func (r *rows) blobs(name string, v [][]byte) *rows     { return r.add(name, colBlob, len(v), v) }

// pgTypes are the Postgres array types of the column kinds.
var pgTypes = [...]string{colText: "TEXT[]", colNullText: "TEXT[]", colInt: "BIGINT[]", colNullInt: "BIGINT[]", colBlob: "BYTEA[]"}

// from returns a FROM item reading r under its alias, with its arguments.
func (d Dialect) from(r *rows) (string, []any) {
	switch {
	case d.ArrayParams:
		return r.unnest()
	case r.n*len(r.cols) <= maxSQLiteParams:
		return r.values()
	}
	return r.jsonEach()
}

// in returns a condition that column is one of vals, with its arguments.
// On Postgres it is column = ANY(array parameter), which the planner
// answers from an index on column whatever it knows of the table; a join
// with unnest (or IN over it) is planned as a hash join over the whole
// table while the table has no statistics (new, or grown since autovacuum
// last analysed it). Elsewhere it is IN over the dialect's table of vals.
func (d Dialect) in(column string, vals []string) (string, []any) {
	if d.ArrayParams {
		return column + " = ANY(CAST(? AS TEXT[]))", []any{vals}
	}
	from, args := d.from(newRows("v", len(vals)).text("v", vals))
	return column + " IN (SELECT v.v FROM " + from + ")", args
}

// maxSQLiteParams is SQLite's limit on the parameters of one statement.
const maxSQLiteParams = 32766

func (r *rows) values() (string, []any) {
	var b strings.Builder
	b.WriteString("(SELECT ")
	for i, c := range r.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		if r.n == 0 {
			b.WriteString("NULL AS " + c.name)
		} else {
			b.WriteString("column" + strconv.Itoa(i+1) + " AS " + c.name)
		}
	}
	if r.n == 0 {
		b.WriteString(" WHERE 0) AS " + r.alias)
		return b.String(), nil
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(r.cols)), ", ") + ")"
	b.WriteString(" FROM (VALUES ")
	args := make([]any, 0, r.n*len(r.cols))
	for i := range r.n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
		for _, c := range r.cols {
			args = append(args, c.value(i))
		}
	}
	b.WriteString(")) AS " + r.alias)
	return b.String(), args
}

// value returns row i's value as a driver argument, nil for NULL.
func (c column) value(i int) any {
	switch v := c.vals.(type) {
	case []string:
		return v[i]
	case []*string:
		if v[i] == nil {
			return nil
		}
		return *v[i]
	case []int64:
		return v[i]
	case []*int64:
		if v[i] == nil {
			return nil
		}
		return *v[i]
	case [][]byte:
		if v[i] == nil {
			return nil
		}
		return v[i]
	}
	panic("sqlstore: unknown column type")
}

func (r *rows) unnest() (string, []any) {
	var b strings.Builder
	args := make([]any, len(r.cols))
	names := make([]string, len(r.cols))
	b.WriteString("unnest(")
	for i, c := range r.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("CAST(? AS " + pgTypes[c.kind] + ")")
		args[i], names[i] = c.vals, c.name
	}
	b.WriteString(") AS " + r.alias + "(" + strings.Join(names, ", ") + ")")
	return b.String(), args
}

func (r *rows) jsonEach() (string, []any) {
	var b strings.Builder
	b.WriteString("(SELECT ")
	for i, c := range r.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		v := "value->>" + strconv.Itoa(i)
		switch c.kind {
		case colText, colNullText:
			v = "CAST(unhex(" + v + ") AS TEXT)"
		case colBlob:
			v = "unhex(" + v + ")"
		}
		b.WriteString(v + " AS " + c.name)
	}
	b.WriteString(" FROM json_each(?)) AS " + r.alias)
	return b.String(), []any{r.json()}
}

// json encodes the table as a JSON array of rows.
func (r *rows) json() string {
	buf := make([]byte, 0, 2+r.n*(2+16*len(r.cols)))
	buf = append(buf, '[')
	for i := range r.n {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		for j, c := range r.cols {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = c.appendJSON(buf, i)
		}
		buf = append(buf, ']')
	}
	return string(append(buf, ']'))
}

func (c column) appendJSON(buf []byte, i int) []byte {
	hexString := func(b []byte) []byte {
		buf = append(buf, '"')
		buf = hex.AppendEncode(buf, b)
		return append(buf, '"')
	}
	switch v := c.vals.(type) {
	case []string:
		return hexString([]byte(v[i]))
	case []*string:
		if v[i] == nil {
			return append(buf, "null"...)
		}
		return hexString([]byte(*v[i]))
	case []int64:
		return strconv.AppendInt(buf, v[i], 10)
	case []*int64:
		if v[i] == nil {
			return append(buf, "null"...)
		}
		return strconv.AppendInt(buf, *v[i], 10)
	case [][]byte:
		if v[i] == nil {
			return append(buf, "null"...)
		}
		return hexString(v[i])
	}
	panic("sqlstore: unknown column type")
}
