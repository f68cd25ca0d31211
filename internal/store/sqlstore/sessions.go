package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

const sessionColumns = `id, subject, device, claims, created_at, refreshed_at, expires_at, revoked_at,
	status_list, status_idx, status_gen, binding_kind, binding_jkt, binding_key, bound_at`

// sessionColumnsOfS is sessionColumns qualified by the alias s.
const sessionColumnsOfS = `s.id, s.subject, s.device, s.claims, s.created_at, s.refreshed_at,
	s.expires_at, s.revoked_at, s.status_list, s.status_idx, s.status_gen,
	s.binding_kind, s.binding_jkt, s.binding_key, s.bound_at`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collect reads every row of a query (rows, err as the query returned
// them) with scan, and closes the rows.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanSession(row scanner) (store.Session, error) {
	var (
		s                           store.Session
		claims                      sql.NullString
		created, refreshed, expires int64
		revoked                     sql.NullInt64
		slotList, slotIdx, slotGen  sql.NullInt64
		kind, jkt, key              sql.NullString
		boundAt                     sql.NullInt64
	)
	if err := row.Scan(&s.ID, &s.Subject, &s.Device, &claims, &created, &refreshed, &expires, &revoked,
		&slotList, &slotIdx, &slotGen, &kind, &jkt, &key, &boundAt); err != nil {
		return store.Session{}, err
	}
	if kind.Valid {
		s.Binding = store.Binding{Kind: kind.String, Thumbprint: jkt.String, BoundAt: fromNullMicros(boundAt)}
		if key.Valid {
			s.Binding.Key = json.RawMessage(key.String)
		}
	}
	if slotList.Valid {
		s.Status = store.StatusSlot{SlotPos: store.SlotPos{List: slotList.Int64, Index: slotIdx.Int64}, Generation: slotGen.Int64}
	}
	if claims.Valid {
		s.Claims = json.RawMessage(claims.String)
	}
	s.CreatedAt, s.RefreshedAt, s.ExpiresAt = fromMicros(created), fromMicros(refreshed), fromMicros(expires)
	s.RevokedAt = fromNullMicros(revoked)
	return s, nil
}

// CreateSession implements store.Sessions. Creations are committed in
// batches (see batch.go).
func (s *Store) CreateSession(ctx context.Context, ns store.NewSession) (store.Created, error) {
	return s.creates.do(ctx, ns)
}

// execCreate stores a batch of new sessions and their first refresh tokens.
//
// The subjects' rows are locked before anything else (created at
// generation 0 if new). RevokeSubject locks the same rows first, so the two
// serialize: either a session exists when a cutoff ends the subject's
// sessions, or it is created after the cutoff and carries the new
// generation. Without the lock, on Postgres a session created concurrently
// with "sign out everywhere" could survive it.
//
// Status list slots are allocated after the subjects are locked, so a
// cutoff of the subject that commits later covers them. A creation whose
// candidates are all held is refused alone (store.ErrNoSlot).
func (s *Store) execCreate(ctx context.Context, t *tx, ops []*pending[store.NewSession, store.Created]) error {
	subjects := make([]string, len(ops))
	for i, p := range ops {
		subjects[i] = p.in.Session.Subject
	}
	gens, err := bumpSubjects(ctx, t, subjects, false)
	if err != nil {
		return err
	}
	var wants []*slotWant
	for _, p := range ops {
		p.out = store.Created{Generation: gens[p.in.Session.Subject]}
		if ss := p.in.Session; p.in.Slot != nil {
			wants = append(wants, &slotWant{sessionID: ss.ID, subject: ss.Subject, gen: p.out.Generation,
				freeAfter: micros(ss.ExpiresAt.Add(p.in.Slot.Grace)), req: p.in.Slot})
		}
	}
	if err := allocateSlots(ctx, t, wants); err != nil {
		return err
	}
	slots := make(map[string]store.StatusSlot, len(wants))
	for _, w := range wants {
		slots[w.sessionID] = w.got
	}
	for _, p := range ops {
		if p.out.Status = slots[p.in.Session.ID]; p.in.Slot != nil && p.out.Status.List == 0 {
			p.err = store.ErrNoSlot
		}
	}
	if anyRefused(ops) {
		return nil // rolled back and run again without them
	}
	if err := insertSessions(ctx, t, ops); err != nil {
		return s.conflict(err)
	}
	if err := insertRefreshTokens(ctx, t, newSessionTokens(ops)); err != nil {
		return s.conflict(err)
	}
	return recordAll(ctx, t, createRecords(ops))
}

// createRecords are the audit records of the batch's sessions: the one
// each NewSession.Record names, and "session.bind" for those created bound.
func createRecords(ops []*pending[store.NewSession, store.Created]) []store.AuditRecord {
	var out []store.AuditRecord
	for _, p := range ops {
		ss := p.in.Session
		if p.in.Record != "" {
			out = append(out, store.AuditRecord{At: ss.CreatedAt, Actor: p.in.Actor, Action: p.in.Record, Target: ss.ID})
		}
		if ss.Binding.Bound() {
			out = append(out, bindRecord(ss.ID, ss.Binding.Kind, ss.CreatedAt, p.in.Actor))
		}
	}
	return out
}

// bindRecord is the audit record of a binding; the reason names the
// kind, so the trail says how a session was bound.
func bindRecord(id, kind string, at time.Time, a store.Actor) store.AuditRecord {
	reason := kind
	if a.Reason != "" {
		reason = kind + ": " + a.Reason
	}
	return store.AuditRecord{At: at, Actor: store.Actor{By: a.By, Reason: reason}, Action: "session.bind", Target: id}
}

// insertSessions stores the batch's sessions, each with the slot in its
// p.out.
func insertSessions(ctx context.Context, t *tx, ops []*pending[store.NewSession, store.Created]) error {
	n := len(ops)
	id, sub, device := make([]string, n), make([]string, n), make([]string, n)
	claims := make([]*string, n)
	created, refreshed, expires := make([]int64, n), make([]int64, n), make([]int64, n)
	revoked := make([]*int64, n)
	slotList, slotIdx, slotGen := make([]*int64, n), make([]*int64, n), make([]*int64, n)
	kind, jkt, key, boundAt := make([]*string, n), make([]*string, n), make([]*string, n), make([]*int64, n)
	for i, p := range ops {
		if b := p.in.Session.Binding; b.Bound() {
			k, j, at := b.Kind, b.Thumbprint, micros(p.in.Session.CreatedAt)
			kind[i], jkt[i], key[i], boundAt[i] = &k, &j, claimsText(b.Key), &at
		}
		if sl := p.out.Status; sl.List != 0 {
			slotList[i], slotIdx[i], slotGen[i] = &sl.List, &sl.Index, &sl.Generation
		}
		ss := p.in.Session
		id[i], sub[i], device[i], claims[i] = ss.ID, ss.Subject, ss.Device, claimsText(ss.Claims)
		created[i], refreshed[i], expires[i] = micros(ss.CreatedAt), micros(ss.RefreshedAt), micros(ss.ExpiresAt)
		if ss.RefreshedAt.IsZero() {
			refreshed[i] = created[i]
		}
		if !ss.RevokedAt.IsZero() {
			at := micros(ss.RevokedAt)
			revoked[i] = &at
		}
	}
	from, args := t.d.from(newRows("s", n).text("id", id).text("subject", sub).text("device", device).
		nullText("claims", claims).ints("created_at", created).ints("refreshed_at", refreshed).
		ints("expires_at", expires).nullInts("revoked_at", revoked).
		nullInts("status_list", slotList).nullInts("status_idx", slotIdx).nullInts("status_gen", slotGen).
		nullText("binding_kind", kind).nullText("binding_jkt", jkt).nullText("binding_key", key).nullInts("bound_at", boundAt))
	_, err := t.exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) SELECT `+sessionColumns+` FROM `+from, args...)
	return err
}

func newSessionTokens(ops []*pending[store.NewSession, store.Created]) []store.RefreshToken {
	toks := make([]store.RefreshToken, len(ops))
	for i, p := range ops {
		toks[i] = p.in.Refresh
		toks[i].SessionID = p.in.Session.ID
	}
	return toks
}

func insertRefreshTokens(ctx context.Context, t *tx, toks []store.RefreshToken) error {
	if len(toks) == 0 {
		return nil
	}
	n := len(toks)
	hash, sid, created, expires := make([][]byte, n), make([]string, n), make([]int64, n), make([]int64, n)
	for i, rt := range toks {
		hash[i], sid[i], created[i], expires[i] = rt.Hash[:], rt.SessionID, micros(rt.CreatedAt), micros(rt.ExpiresAt)
	}
	from, args := t.d.from(newRows("r", n).blobs("hash", hash).text("session_id", sid).
		ints("created_at", created).ints("expires_at", expires))
	_, err := t.exec(ctx, `INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at)
		SELECT hash, session_id, created_at, expires_at FROM `+from, args...)
	return err
}

// claimsText stores nil claims (or a binding's absent key) as NULL and
// anything else as text.
func claimsText(c json.RawMessage) *string {
	if c == nil {
		return nil
	}
	s := string(c)
	return &s
}

// bumpSubjects locks the rows of subjects (creating missing ones at
// generation 0), in sorted order, and returns each one's generation. With
// cut, every occurrence of a subject in subjects raises its generation by
// one, and the generation returned is the highest; without, generations
// are only read. Either way the rows stay locked until the transaction ends
// (an upsert takes the row lock on both backends; SQLite has one writer
// anyway).
func bumpSubjects(ctx context.Context, t *tx, subjects []string, cut bool) (map[string]int64, error) {
	count := make(map[string]int64, len(subjects))
	for _, sub := range subjects {
		count[sub]++
	}
	if len(count) == 0 {
		return count, nil
	}
	subs, by := make([]string, 0, len(count)), make([]int64, 0, len(count))
	for sub, n := range count {
		if !cut {
			n = 0
		}
		subs, by = append(subs, sub), append(by, n)
	}
	from, args := t.d.from(newRows("b", len(subs)).text("sub", subs).ints("n", by))
	rs, err := t.query(ctx, `INSERT INTO subjects (subject, generation)
		SELECT sub, n FROM `+from+` WHERE true ORDER BY sub
		ON CONFLICT (subject) DO UPDATE SET generation = subjects.generation + excluded.generation
		RETURNING subject, generation`, args...)
	if err != nil {
		return nil, fmt.Errorf("subjects: %w", err)
	}
	defer rs.Close()
	gens := make(map[string]int64, len(count))
	for rs.Next() {
		var sub string
		var gen int64
		if err := rs.Scan(&sub, &gen); err != nil {
			return nil, fmt.Errorf("subjects: %w", err)
		}
		gens[sub] = gen
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("subjects: %w", err)
	}
	return gens, nil
}

// Session implements store.Sessions. The session and the generation are read
// in one statement so they come from one snapshot.
func (s *Store) Session(ctx context.Context, id string) (store.Session, int64, error) {
	row := s.queryRow(ctx, `SELECT `+sessionColumnsOfS+`, COALESCE(g.generation, 0)
		FROM sessions s LEFT JOIN subjects g ON g.subject = s.subject WHERE s.id = ?`, id)
	var gen int64
	ss, err := scanSession(scanFunc(func(dest ...any) error { return row.Scan(append(dest, &gen)...) }))
	if err != nil {
		return store.Session{}, 0, fmt.Errorf("sqlstore: session: %w", notFound(err, fmt.Sprintf("session %q", id)))
	}
	return ss, gen, nil
}

// scanFunc adapts a function to scanner, to scan extra columns after a
// session's.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// SessionByRefresh implements store.Sessions.
func (s *Store) SessionByRefresh(ctx context.Context, hash [32]byte) (store.Session, error) {
	row := s.queryRow(ctx, `SELECT `+sessionColumnsOfS+`
		FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.hash = ?`, hash[:])
	ss, err := scanSession(row)
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlstore: session by refresh: %w", notFound(err, "refresh token"))
	}
	return ss, nil
}

// ListSessions implements store.Sessions.
func (s *Store) ListSessions(ctx context.Context, subject string, now time.Time) ([]store.Session, error) {
	rows, err := s.query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE subject = ? AND revoked_at IS NULL AND expires_at > ?
		ORDER BY created_at DESC, id DESC`, subject, micros(now))
	out, err := collect(rows, err, scanSession)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list sessions: %w", err)
	}
	return out, nil
}

// DeleteExpired implements store.Sessions. Tokens go first, so the count
// does not depend on foreign key cascades.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	err := s.inTx(ctx, "delete expired", func(t *tx) error {
		n, err := rowsAffected(t.exec(ctx, `DELETE FROM refresh_tokens WHERE expires_at <= ?
			OR session_id IN (SELECT id FROM sessions WHERE expires_at <= ?)`, micros(now), micros(now)))
		if err != nil {
			return err
		}
		m, err := rowsAffected(t.exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, micros(now)))
		total = n + m
		return err
	})
	return total, err
}
