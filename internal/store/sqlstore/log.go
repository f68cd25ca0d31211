package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

const entryColumns = `seq, kind, session_id, subject, generation, created_at, expires_at`

// appendEntry appends e to the log and returns it with its seq. The seq
// comes from the log_head row, not from a sequence: its row lock holds back
// every other appender until this transaction ends, so entries commit in
// seq order. A sequence would let seq 7 commit before seq 6, and a reader
// that saw 7 would skip 6 for good.
//
// d is kept with the entry, in the same row, for the standards outputs
// (status lists, Shared Signals events); verifiers never read it.
func appendEntry(ctx context.Context, t *tx, e revocation.Entry, d store.EntryDetail) (revocation.Entry, error) {
	if err := t.queryRow(ctx, `UPDATE log_head SET seq = seq + 1 WHERE id = 1 RETURNING seq`).Scan(&e.Seq); err != nil {
		return revocation.Entry{}, fmt.Errorf("log head: %w", err)
	}
	detail, err := json.Marshal(d)
	if err != nil {
		return revocation.Entry{}, fmt.Errorf("entry detail: %w", err)
	}
	if _, err := t.exec(ctx, `INSERT INTO revocations (`+entryColumns+`, detail, slots) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, string(e.Kind), e.Session, e.Subject, e.Generation, micros(e.CreatedAt), micros(e.ExpiresAt),
		string(detail), encodeSlots(d.Slots)); err != nil {
		return revocation.Entry{}, fmt.Errorf("append: %w", err)
	}
	if t.d.AfterAppend != nil {
		if err := t.d.AfterAppend(ctx, t.Tx, e.Seq); err != nil {
			return revocation.Entry{}, fmt.Errorf("notify: %w", err)
		}
	}
	t.appended = true
	e.CreatedAt, e.ExpiresAt = stored(e.CreatedAt), stored(e.ExpiresAt)
	return e, nil
}

func scanEntry(row scanner) (revocation.Entry, error) {
	var (
		e                revocation.Entry
		kind             string
		created, expires int64
	)
	if err := row.Scan(&e.Seq, &kind, &e.Session, &e.Subject, &e.Generation, &created, &expires); err != nil {
		return revocation.Entry{}, err
	}
	e.Kind = revocation.Kind(kind)
	e.CreatedAt, e.ExpiresAt = fromMicros(created), fromMicros(expires)
	return e, nil
}

// entries runs a query for log entries.
func (s *Store) entries(ctx context.Context, q string, args ...any) ([]revocation.Entry, error) {
	rows, err := s.query(ctx, `SELECT `+entryColumns+` FROM revocations `+q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []revocation.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// EntriesAfter implements store.Log. A limit below 1 returns nothing.
func (s *Store) EntriesAfter(ctx context.Context, after int64, limit int) ([]revocation.Entry, error) {
	if limit < 1 {
		return nil, nil
	}
	es, err := s.entries(ctx, `WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: entries after %d: %w", after, err)
	}
	return es, nil
}

// Head implements store.Log. It reads log_head, which pruning never touches.
func (s *Store) Head(ctx context.Context) (int64, error) {
	var head int64
	if err := s.queryRow(ctx, `SELECT seq FROM log_head WHERE id = 1`).Scan(&head); err != nil {
		return 0, fmt.Errorf("sqlstore: head: %w", err)
	}
	return head, nil
}

// PruneLog implements store.Log. Entries with ExpiresAt at or before now go
// (they are no longer live), except the head entry.
func (s *Store) PruneLog(ctx context.Context, now time.Time) (int64, error) {
	n, err := rowsAffected(s.exec(ctx, `DELETE FROM revocations
		WHERE expires_at <= ? AND seq < (SELECT seq FROM log_head WHERE id = 1)`, micros(now)))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: prune log: %w", err)
	}
	return n, nil
}

// DetailedEntriesAfter implements store.DetailedLog. A limit below 1
// returns nothing.
func (s *Store) DetailedEntriesAfter(ctx context.Context, after int64, limit int) ([]store.DetailedEntry, error) {
	if limit < 1 {
		return nil, nil
	}
	rows, err := s.query(ctx, `SELECT `+entryColumns+`, detail, slots FROM revocations
		WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: detailed entries after %d: %w", after, err)
	}
	defer rows.Close()
	var out []store.DetailedEntry
	for rows.Next() {
		var detail, slots sql.NullString
		var de store.DetailedEntry
		e, err := scanEntry(scanFunc(func(dest ...any) error { return rows.Scan(append(dest, &detail, &slots)...) }))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: detailed entries after %d: %w", after, err)
		}
		de.Entry = e
		if detail.Valid && detail.String != "" {
			if err := json.Unmarshal([]byte(detail.String), &de.Detail); err != nil {
				return nil, fmt.Errorf("sqlstore: entry %d: detail: %w", e.Seq, err)
			}
		}
		if de.Detail.Slots, err = decodeSlots(slots); err != nil {
			return nil, fmt.Errorf("sqlstore: entry %d: %w", e.Seq, err)
		}
		out = append(out, de)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: detailed entries after %d: %w", after, err)
	}
	return out, nil
}
