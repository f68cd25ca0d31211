package sqlstore

import (
	"io/fs"
	"strconv"
	"strings"
)

// Dialect is what differs between the SQL databases a Store runs on. The
// queries themselves are written once, with ? placeholders, in SQL both
// SQLite and Postgres accept.
type Dialect struct {
	// Name identifies the database in errors ("sqlite", "postgres").
	Name string
	// DollarPlaceholders rewrites ? into $1, $2, ... (Postgres).
	DollarPlaceholders bool
	// ArrayParams passes the tables of batched statements as one array
	// parameter per column, read with unnest (Postgres); without it they
	// are one JSON parameter read with json_each (SQLite). See rows.
	ArrayParams bool
	// ForUpdate is the row locking clause appended to a SELECT of a row the
	// transaction goes on to change: "FOR UPDATE" on Postgres, where
	// concurrent transactions would otherwise decide on the same stale row;
	// empty on SQLite, whose single writer already serializes them.
	ForUpdate string
	// MigrationLock, when set, runs first in the migration transaction so
	// that processes starting at once migrate one after the other.
	MigrationLock string
	// KeyLock, when set, runs first in AddFirstKey's transaction: a lock
	// that concurrent callers queue on, released at commit, so that of
	// several nodes starting on an empty store one adds the first key.
	// Empty on SQLite, whose single writer already serializes them.
	KeyLock string
	// Schema holds the migrations: files named NNNN_description.sql, applied
	// in version order, each once.
	Schema fs.FS
	// IsUnique reports whether err is a unique or primary key violation.
	IsUnique func(err error) bool
	// Unwritable reports whether err is the database refusing a write for
	// want of room or of permission (store.ErrUnwritable). Nil: never.
	Unwritable func(err error) bool
	// PrepareOnce keeps the statements a node runs every second prepared
	// on the writer (Store.prepare): SQLite's driver parses a statement at
	// every run otherwise. Without it they run as any other (pgx keeps
	// prepared statements by their text itself).
	PrepareOnce bool
	// WritableCTE allows INSERT, UPDATE and DELETE as WITH items of another
	// statement (Postgres), so that writes ride on the next statement's
	// round trip (see tx.later).
	WritableCTE bool
	// NotifyAppend, when set, is an SQL expression of seq (the new head)
	// evaluated, its value ignored, by the statement that advances the log
	// head, so the notice goes with the append in the same round trip and
	// commits with it (Postgres: pg_notify, delivered at commit, never for a
	// rolled back transaction).
	NotifyAppend string
	// NotifyAsk is NotifyAppend for an append whose caller waits for its
	// confirmation (tx.ask); required with NotifyAppend.
	NotifyAsk string
	// ByteOrder, when set, is the COLLATE clause (with a leading space)
	// that makes text compare byte-wise, so a prefix is a range an index
	// can read (Postgres: ` COLLATE "C"`); empty on SQLite, whose BINARY
	// collation already does.
	ByteOrder string
	// HomeQuery, when set, selects one text value identifying the database
	// (store.ClusterRecord's Home); empty on SQLite, which has none.
	HomeQuery string
}

// rebind turns the ? placeholders of q into the dialect's own.
func (d Dialect) rebind(q string) string {
	if !d.DollarPlaceholders || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for _, r := range q {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// lock returns the locking clause for a query, with a leading space, or
// nothing when the dialect does not lock rows.
func (d Dialect) lock() string {
	if d.ForUpdate == "" {
		return ""
	}
	return " " + d.ForUpdate
}
