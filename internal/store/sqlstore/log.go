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

// appendEntries appends es to the log, in order, giving each its seq. The
// seqs come from the log_head row, not from a sequence: its row lock holds
// back every other appender until this transaction ends, so entries commit
// in seq order. A sequence would let seq 7 commit before seq 6, and a reader
// that saw 7 would skip 6 for good. A batch advances the head once for all
// its entries and sends one notice.
//
// ds[i] is kept with es[i], in the same row, for the standards outputs
// (status lists, Shared Signals events); verifiers never read it.
func appendEntries(ctx context.Context, t *tx, es []*revocation.Entry, ds []store.EntryDetail) error {
	if len(es) == 0 {
		return nil
	}
	n := len(es)
	off, kind, sid, sub := make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
	gen, created, expires := make([]int64, n), make([]int64, n), make([]int64, n)
	detail, slots := make([]*string, n), make([]*string, n)
	for i, d := range ds {
		b, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("entry detail: %w", err)
		}
		text := string(b)
		detail[i], slots[i] = &text, encodeSlots(d.Slots)
	}
	for i, e := range es {
		e.CreatedAt, e.ExpiresAt = stored(e.CreatedAt), stored(e.ExpiresAt)
		off[i], kind[i], sid[i], sub[i] = int64(i)+1, string(e.Kind), e.Session, e.Subject
		gen[i], created[i], expires[i] = e.Generation, micros(e.CreatedAt), micros(e.ExpiresAt)
	}
	// Entry i gets seq head - n + off.
	from, args := t.d.from(newRows("e", n).ints("off", off).text("kind", kind).text("sid", sid).text("sub", sub).
		ints("gen", gen).ints("created", created).ints("expires", expires).
		nullText("detail", detail).nullText("slots", slots))
	insert := `INSERT INTO revocations (` + entryColumns + `, detail, slots)
		SELECT h.seq - ? + e.off, e.kind, e.sid, e.sub, e.gen, e.created, e.expires, e.detail, e.slots FROM `
	var head int64
	dest := []any{&head}
	returning := `seq`
	if notify := t.d.NotifyAppend; notify != "" {
		if t.ask {
			notify = t.d.NotifyAsk
		}
		var ignored bool
		returning, dest = returning+`, (`+notify+`) IS NULL`, append(dest, &ignored)
	}
	if t.d.WritableCTE {
		// One round trip, which also holds log_head, and so every other
		// appender, for the shortest time.
		q := `WITH h AS (UPDATE log_head SET seq = seq + ? WHERE id = 1 RETURNING seq),
			appended AS (` + insert + `h, ` + from + `)
			SELECT ` + returning + ` FROM h`
		if err := t.queryRow(ctx, q, append([]any{n, n}, args...)...).Scan(dest...); err != nil {
			return fmt.Errorf("append: %w", err)
		}
	} else {
		if err := t.queryRow(ctx, `UPDATE log_head SET seq = seq + ? WHERE id = 1 RETURNING `+returning, n).Scan(dest...); err != nil {
			return fmt.Errorf("log head: %w", err)
		}
		if _, err := t.exec(ctx, insert+`(SELECT ? AS seq) AS h, `+from, append([]any{n, head}, args...)...); err != nil {
			return fmt.Errorf("append: %w", err)
		}
	}
	for i, e := range es {
		e.Seq = head - int64(n) + int64(i) + 1
	}
	t.appended, t.head = true, head
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
	row, err := s.queryRowPrepared(ctx, `SELECT seq FROM log_head WHERE id = 1`)
	if err == nil {
		err = row.Scan(&head)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: head: %w", err)
	}
	return head, nil
}

// PruneLog implements store.Log. Entries with ExpiresAt at or before now go
// (they are no longer live), except the head entry and those a stream still
// needs: beyond the lowest cursor of the streams not disabled, recorded
// after keepSince.
func (s *Store) PruneLog(ctx context.Context, now, keepSince time.Time) (int64, error) {
	n, err := rowsAffected(s.exec(ctx, `DELETE FROM revocations
		WHERE expires_at <= ? AND seq < (SELECT seq FROM log_head WHERE id = 1)
		AND (created_at <= ? OR seq <= COALESCE((SELECT MIN(cursor) FROM ssf_streams WHERE status <> 'disabled'), seq))`,
		micros(now), micros(keepSince)))
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
		e, err := scanEntry(scanFunc(func(dest ...any) error { return rows.Scan(append(dest, &detail, &slots)...) }))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: detailed entries after %d: %w", after, err)
		}
		de := store.DetailedEntry{Entry: e}
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
