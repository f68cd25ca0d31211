package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// allocateSlot takes the first candidate of req that no one holds, for a
// session ending at end and its subject generation gen. A held position
// conflicts on the primary key and is skipped: DO NOTHING takes no lock on
// the holder's row, so two allocations never wait on each other's
// candidates (each holds at most the one row it inserted).
func allocateSlot(ctx context.Context, t *tx, sessionID, subject string, end time.Time, gen int64,
	req *store.SlotRequest) (store.StatusSlot, error) {
	for _, c := range req.Candidates {
		n, err := rowsAffected(t.exec(ctx, `INSERT INTO status_slots
			(list_id, idx, session_id, subject, generation, free_after) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (list_id, idx) DO NOTHING`,
			c.List, c.Index, sessionID, subject, gen, micros(end.Add(req.Grace))))
		if err != nil {
			return store.StatusSlot{}, fmt.Errorf("allocate status slot: %w", err)
		}
		if n == 1 {
			return store.StatusSlot{SlotPos: c, Generation: gen}, nil
		}
	}
	return store.StatusSlot{}, store.ErrNoSlot
}

// setSessionSlot records the session's current slot.
func setSessionSlot(ctx context.Context, t *tx, id string, s store.StatusSlot) error {
	_, err := t.exec(ctx, `UPDATE sessions SET status_list = ?, status_idx = ?, status_gen = ? WHERE id = ?`,
		s.List, s.Index, s.Generation, id)
	return err
}

// slotArgs stores a zero slot as NULLs.
func slotArgs(s store.StatusSlot) (any, any, any) {
	if s.List == 0 {
		return nil, nil, nil
	}
	return s.List, s.Index, s.Generation
}

// coverSlots makes the still-held slots matched by where INVALID with a log
// entry expiring at until: a slot still in use is retired and held exactly
// until then (its tokens were all minted before now, so they expire by
// then); a retired one is held at least until then. It returns the slots,
// which the entry records. Slots past their hold are left alone: no token
// carries them any more.
func coverSlots(ctx context.Context, t *tx, now, until time.Time, where string, args ...any) ([]store.SlotPos, error) {
	u := micros(until)
	rows, err := t.QueryContext(ctx, t.d.rebind(`UPDATE status_slots
		SET free_after = CASE WHEN retired = 0 OR free_after < ? THEN ? ELSE free_after END, retired = 1
		WHERE `+where+` AND free_after > ? RETURNING list_id, idx`),
		append(append([]any{u, u}, args...), micros(now))...)
	if err != nil {
		return nil, fmt.Errorf("cover status slots: %w", err)
	}
	defer rows.Close()
	var out []store.SlotPos
	for rows.Next() {
		var p store.SlotPos
		if err := rows.Scan(&p.List, &p.Index); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// encodeSlots writes slots as "list:idx,list:idx", or NULL for none.
func encodeSlots(slots []store.SlotPos) any {
	if len(slots) == 0 {
		return nil
	}
	var b strings.Builder
	for i, s := range slots {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(s.List, 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(s.Index, 10))
	}
	return b.String()
}

func decodeSlots(v sql.NullString) ([]store.SlotPos, error) {
	if !v.Valid || v.String == "" {
		return nil, nil
	}
	parts := strings.Split(v.String, ",")
	out := make([]store.SlotPos, 0, len(parts))
	for _, p := range parts {
		l, i, ok := strings.Cut(p, ":")
		list, err1 := strconv.ParseInt(l, 10, 64)
		idx, err2 := strconv.ParseInt(i, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("malformed slots %q", v.String)
		}
		out = append(out, store.SlotPos{List: list, Index: idx})
	}
	return out, nil
}

// StatusLists implements store.StatusLists.
func (s *Store) StatusLists(ctx context.Context) ([]store.StatusList, error) {
	rows, err := s.query(ctx, `SELECT id, size, created_at FROM status_lists ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: status lists: %w", err)
	}
	defer rows.Close()
	var out []store.StatusList
	for rows.Next() {
		var (
			l       store.StatusList
			created int64
		)
		if err := rows.Scan(&l.ID, &l.Size, &created); err != nil {
			return nil, fmt.Errorf("sqlstore: status lists: %w", err)
		}
		l.CreatedAt = fromMicros(created)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: status lists: %w", err)
	}
	return out, nil
}

// AddStatusList implements store.StatusLists.
func (s *Store) AddStatusList(ctx context.Context, l store.StatusList) error {
	if _, err := s.exec(ctx, `INSERT INTO status_lists (id, size, created_at) VALUES (?, ?, ?)`,
		l.ID, l.Size, micros(l.CreatedAt)); err != nil {
		return fmt.Errorf("sqlstore: add status list %d: %w", l.ID, s.conflict(err))
	}
	return nil
}

// FreeSlots implements store.StatusLists.
func (s *Store) FreeSlots(ctx context.Context, before time.Time) (int64, error) {
	n, err := rowsAffected(s.exec(ctx, `DELETE FROM status_slots WHERE free_after < ?`, micros(before)))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: free status slots: %w", err)
	}
	return n, nil
}

// HeldSlots implements store.StatusLists.
func (s *Store) HeldSlots(ctx context.Context) (int64, error) {
	var n int64
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM status_slots`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: held status slots: %w", err)
	}
	return n, nil
}
