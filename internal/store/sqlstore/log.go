package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

const entryColumns = `seq, kind, session_id, subject, generation, created_at, expires_at`

// appendEntries appends es to the log, in order, giving each its seq. The
// seqs come from the log_head row, not from a sequence: its row lock holds
// back every other appender until this transaction ends, so entries commit
// in seq order. A sequence would let seq 7 commit before seq 6, and a reader
// that saw 7 would skip 6 for good. A batch advances the head once for all
// its entries and sends one notice.
func appendEntries(ctx context.Context, t *tx, es []*revocation.Entry) error {
	if len(es) == 0 {
		return nil
	}
	var head int64
	if err := t.queryRow(ctx, `UPDATE log_head SET seq = seq + ? WHERE id = 1 RETURNING seq`, len(es)).Scan(&head); err != nil {
		return fmt.Errorf("log head: %w", err)
	}
	n := len(es)
	seq, kind, sid, sub := make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
	gen, created, expires := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, e := range es {
		e.Seq = head - int64(n) + int64(i) + 1
		e.CreatedAt, e.ExpiresAt = stored(e.CreatedAt), stored(e.ExpiresAt)
		seq[i], kind[i], sid[i], sub[i] = e.Seq, string(e.Kind), e.Session, e.Subject
		gen[i], created[i], expires[i] = e.Generation, micros(e.CreatedAt), micros(e.ExpiresAt)
	}
	r := newRows("e", n).ints("seq", seq).text("kind", kind).text("sid", sid).text("sub", sub).
		ints("gen", gen).ints("created", created).ints("expires", expires)
	from, args := t.d.from(r)
	if _, err := t.exec(ctx, `INSERT INTO revocations (`+entryColumns+`)
		SELECT seq, kind, sid, sub, gen, created, expires FROM `+from, args...); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if t.d.AfterAppend != nil {
		if err := t.d.AfterAppend(ctx, t.Tx, head); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	t.appended = true
	return nil
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
