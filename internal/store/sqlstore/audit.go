package sqlstore

import (
	"context"
	"fmt"

	"github.com/tegata-dev/tegata/internal/store"
)

// record writes an audit record in t, so it commits with the change it
// describes.
func record(ctx context.Context, t *tx, r store.AuditRecord) error {
	if _, err := t.exec(ctx, `INSERT INTO audit (at, actor, reason, action, target) VALUES (?, ?, ?, ?, ?)`,
		micros(r.At), r.Actor.By, r.Actor.Reason, r.Action, r.Target); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// recordAll writes audit records in t with one statement.
func recordAll(ctx context.Context, t *tx, rs []store.AuditRecord) error {
	return writeAudit(ctx, t, rs, func(ctx context.Context, q string, args ...any) error {
		_, err := t.exec(ctx, q, args...)
		return err
	})
}

// recordLater is recordAll put off until t's next statement (see tx.later).
func recordLater(ctx context.Context, t *tx, rs []store.AuditRecord) error {
	return writeAudit(ctx, t, rs, t.later)
}

func writeAudit(ctx context.Context, t *tx, rs []store.AuditRecord, run func(context.Context, string, ...any) error) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	at, by, reason, action, target := make([]int64, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range rs {
		at[i], by[i], reason[i], action[i], target[i] = micros(r.At), r.Actor.By, r.Actor.Reason, r.Action, r.Target
	}
	from, args := t.d.from(newRows("a", n).ints("at", at).text("actor", by).text("reason", reason).
		text("action", action).text("target", target))
	if err := run(ctx, `INSERT INTO audit (at, actor, reason, action, target)
		SELECT at, actor, reason, action, target FROM `+from, args...); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// AuditLog implements store.Audit. A limit below 1 returns nothing.
//
// On Postgres, IDs are allocated before commit, so a record may become
// visible after one with a higher ID: the trail is for people reading it,
// not a feed to follow by ID.
func (s *Store) AuditLog(ctx context.Context, after int64, limit int) ([]store.AuditRecord, error) {
	if limit < 1 {
		return nil, nil
	}
	rows, err := s.query(ctx, `SELECT id, at, actor, reason, action, target FROM audit
		WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit log: %w", err)
	}
	defer rows.Close()
	var out []store.AuditRecord
	for rows.Next() {
		var (
			r  store.AuditRecord
			at int64
		)
		if err := rows.Scan(&r.ID, &at, &r.Actor.By, &r.Actor.Reason, &r.Action, &r.Target); err != nil {
			return nil, fmt.Errorf("sqlstore: audit log: %w", err)
		}
		r.At = fromMicros(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: audit log: %w", err)
	}
	return out, nil
}
