package sqlstore

import (
	"database/sql"
	"time"
)

// Instants are stored as integer Unix microseconds rather than SQL time
// types: both databases compare and index them the same way, and no driver
// applies its own time zone or precision rules.

func micros(t time.Time) int64 { return t.UnixMicro() }

// nullMicros stores the zero time as NULL ("never": not revoked, not used).
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

// stored returns t as it reads back from the database.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return fromMicros(micros(t))
}
