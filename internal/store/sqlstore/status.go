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

// slotWant is one session's request for a status list slot in a batch.
type slotWant struct {
	sessionID, subject string
	gen                int64
	freeAfter          int64 // micros: the session's end plus the grace
	req                *store.SlotRequest
	got                store.StatusSlot // zero until allocated
}

// allocateSlots gives each want the first of its candidates that nobody
// holds, in rounds: one INSERT per round for every want still without a
// slot, each offering its next candidate. A held position conflicts on the
// primary key and is skipped (so is one taken by another want of the same
// statement): DO NOTHING takes no lock on the holder's row, so allocations
// never wait on each other's candidates. A want whose candidates are all
// held is left with a zero slot. Wants name distinct sessions.
func allocateSlots(ctx context.Context, t *tx, wants []*slotWant) error {
	for round := 0; ; round++ {
		var open []*slotWant
		for _, w := range wants {
			if w.got.List == 0 && round < len(w.req.Candidates) {
				open = append(open, w)
			}
		}
		if len(open) == 0 {
			return nil
		}
		if err := allocateRound(ctx, t, open, round); err != nil {
			return err
		}
	}
}

func allocateRound(ctx context.Context, t *tx, open []*slotWant, round int) error {
	n := len(open)
	lists, idx, gens, free := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	sids, subs := make([]string, n), make([]string, n)
	bySession := make(map[string]*slotWant, n)
	for i, w := range open {
		c := w.req.Candidates[round]
		lists[i], idx[i], gens[i], free[i], sids[i], subs[i] = c.List, c.Index, w.gen, w.freeAfter, w.sessionID, w.subject
		bySession[w.sessionID] = w
	}
	from, args := t.d.from(newRows("c", n).ints("list_id", lists).ints("idx", idx).text("session_id", sids).
		text("subject", subs).ints("generation", gens).ints("free_after", free))
	rs, err := t.query(ctx, `INSERT INTO status_slots (list_id, idx, session_id, subject, generation, free_after)
		SELECT list_id, idx, session_id, subject, generation, free_after FROM `+from+` WHERE true
		ON CONFLICT (list_id, idx) DO NOTHING RETURNING session_id, list_id, idx`, args...)
	if err != nil {
		return fmt.Errorf("allocate status slots: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var sid string
		var p store.SlotPos
		if err := rs.Scan(&sid, &p.List, &p.Index); err != nil {
			return fmt.Errorf("allocate status slots: %w", err)
		}
		if w := bySession[sid]; w != nil {
			w.got = store.StatusSlot{SlotPos: p, Generation: w.gen}
		}
	}
	return rs.Err()
}

// coverItem is one revocation of a batch whose slots become INVALID: a
// session's (sessionID), or a subject's older generations (subject, gen).
type coverItem struct {
	entry     int // index of its log entry in the batch
	sessionID string
	subject   string
	gen       int64
	now       int64 // micros
	until     int64 // micros: the entry's ExpiresAt
}

// coverSlots makes the still-held slots each item matches INVALID until
// its entry expires, and returns them by entry. A slot still in use is
// retired and held exactly until then (its tokens were all minted before
// the revocation, so they expire by then); a retired one is held at least
// until then. Slots past their hold are left alone: no token carries them
// any more. Two statements whatever the batch: one reads which item covers
// which slot (a slot may be covered by several), one updates each slot
// once with the latest expiry.
func coverSlots(ctx context.Context, t *tx, items []coverItem) (map[int][]store.SlotPos, error) {
	if len(items) == 0 {
		return nil, nil
	}
	covered, err := matchSlots(ctx, t, items)
	if err != nil {
		return nil, err
	}
	until := map[store.SlotPos]int64{}
	byEntry := map[int][]store.SlotPos{}
	for _, m := range covered {
		it := items[m.item]
		byEntry[it.entry] = append(byEntry[it.entry], m.pos)
		until[m.pos] = max(until[m.pos], it.until)
	}
	if len(until) == 0 {
		return byEntry, nil
	}
	n := len(until)
	lists, idx, at := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	for p, u := range until {
		lists, idx, at = append(lists, p.List), append(idx, p.Index), append(at, u)
	}
	from, args := t.d.from(newRows("u", n).ints("list_id", lists).ints("idx", idx).ints("until", at))
	if _, err := t.exec(ctx, `UPDATE status_slots
		SET free_after = CASE WHEN status_slots.retired = 0 OR status_slots.free_after < u.until
			THEN u.until ELSE status_slots.free_after END, retired = 1
		FROM `+from+` WHERE status_slots.list_id = u.list_id AND status_slots.idx = u.idx`, args...); err != nil {
		return nil, fmt.Errorf("cover status slots: %w", err)
	}
	return byEntry, nil
}

type slotMatch struct {
	item int
	pos  store.SlotPos
}

// matchSlots reads which still-held slots each item covers. A session's
// slots are found by session_id = ANY(ids) on Postgres (see Dialect.in):
// joined with a table of ids instead, a new or fast growing status_slots,
// not analysed yet, is read whole by a hash join for every batch.
func matchSlots(ctx context.Context, t *tx, items []coverItem) ([]slotMatch, error) {
	var sids []string
	bySession := map[string][]int{}
	var num, gens, nows []int64
	var subs []string
	for i, it := range items {
		if it.sessionID != "" {
			if bySession[it.sessionID] == nil {
				sids = append(sids, it.sessionID)
			}
			bySession[it.sessionID] = append(bySession[it.sessionID], i)
			continue
		}
		num, subs, gens, nows = append(num, int64(i)), append(subs, it.subject), append(gens, it.gen), append(nows, it.now)
	}
	in, args := t.d.in("s.session_id", sids)
	q := `SELECT -1, s.session_id, s.list_id, s.idx, s.free_after FROM status_slots s WHERE ` + in
	if len(num) > 0 { // else a statement Postgres plans in a quarter of the time
		bySubject, args2 := t.d.from(newRows("d", len(num)).ints("item", num).text("sub", subs).ints("gen", gens).ints("now", nows))
		q += ` UNION ALL SELECT d.item, '', s.list_id, s.idx, s.free_after FROM ` + bySubject + `
			JOIN status_slots s ON s.subject = d.sub AND s.generation < d.gen WHERE s.free_after > d.now`
		args = append(args, args2...)
	}
	rs, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("match status slots: %w", err)
	}
	defer rs.Close()
	var out []slotMatch
	for rs.Next() {
		var (
			item, freeAfter int64
			sid             string
			pos             store.SlotPos
		)
		if err := rs.Scan(&item, &sid, &pos.List, &pos.Index, &freeAfter); err != nil {
			return nil, fmt.Errorf("match status slots: %w", err)
		}
		if item >= 0 {
			out = append(out, slotMatch{item: int(item), pos: pos})
			continue
		}
		for _, i := range bySession[sid] {
			if freeAfter > items[i].now {
				out = append(out, slotMatch{item: i, pos: pos})
			}
		}
	}
	return out, rs.Err()
}

// encodeSlots writes slots as "list:idx,list:idx", or NULL for none.
func encodeSlots(slots []store.SlotPos) *string {
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
	out := b.String()
	return &out
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
	out, err := collect(rows, err, func(row scanner) (l store.StatusList, err error) {
		var created int64
		err = row.Scan(&l.ID, &l.Size, &created)
		l.CreatedAt = fromMicros(created)
		return l, err
	})
	if err != nil {
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
