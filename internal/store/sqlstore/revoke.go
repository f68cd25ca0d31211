package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// Revocations are committed in batches (see batch.go); RevokeSession and
// RevokeSubject are a Revoke of one item.

// RevokeSession implements store.Sessions.
func (s *Store) RevokeSession(ctx context.Context, id string, now, expiresAt time.Time, a store.Actor) (revocation.Entry, error) {
	es, err := s.Revoke(ctx, []store.Revocation{{SessionID: id, Now: now, ExpiresAt: expiresAt, Actor: a}})
	if err != nil {
		return revocation.Entry{}, unwrapItem(err)
	}
	return es[0].Entry, nil
}

// RevokeSubject implements store.Sessions.
func (s *Store) RevokeSubject(ctx context.Context, r store.SubjectRevocation) (revocation.Entry, error) {
	es, err := s.Revoke(ctx, []store.Revocation{{Subject: r.Subject, EndSessions: r.EndSessions, Claims: r.Claims,
		Now: r.Now, ExpiresAt: r.ExpiresAt, Actor: r.Actor}})
	if err != nil {
		return revocation.Entry{}, err
	}
	return es[0].Entry, nil
}

// unwrapItem drops the item index from the error of a one-item Revoke.
func unwrapItem(err error) error {
	var ie *store.ItemError
	if errors.As(err, &ie) {
		return fmt.Errorf("sqlstore: revoke: %w", ie.Err)
	}
	return err
}

// Revoke implements store.Sessions.
func (s *Store) Revoke(ctx context.Context, items []store.Revocation) ([]store.Revoked, error) {
	if len(items) == 0 {
		return nil, nil
	}
	return s.revokes.do(ctx, items)
}

// sessionRow is a session locked by a revocation batch, as the batch has
// changed it so far.
type sessionRow struct {
	id, subject string
	expires     int64
	revoked     bool
	claims      *string
	// What the batch changed: revokedAt (0: nothing), claimsSet.
	revokedAt int64
	claimsSet bool
}

// revokeBatch is the state of one revocation batch.
type revokeBatch struct {
	sessions  map[string]*sessionRow
	bySubject map[string][]*sessionRow // sessions live when locked, by subject
	gens      map[string]int64         // next generation to hand out, per subject
	entries   []*revocation.Entry
	details   []store.EntryDetail // of entries, by index
	covers    []coverItem         // the status list slots each entry covers
	audit     []store.AuditRecord
}

// execRevoke runs a batch of Revoke calls: the subjects' generations first
// (their rows locked, in order), then the sessions they touch (locked, in
// order), then every item in order on what was read, then the writes.
func (s *Store) execRevoke(ctx context.Context, t *tx, ops []*pending[[]store.Revocation, []store.Revoked]) error {
	b := &revokeBatch{}
	if err := b.lockSubjects(ctx, t, ops); err != nil {
		return err
	}
	if err := b.lockSessions(ctx, t, ops); err != nil {
		return err
	}
	outs := make([][]*revocation.Entry, len(ops))
	found := make([][]int, len(ops))
	for k, p := range ops {
		outs[k], found[k] = make([]*revocation.Entry, len(p.in)), make([]int, len(p.in))
		for i, it := range p.in {
			e, n, err := b.apply(it)
			if err != nil {
				p.err = &store.ItemError{Index: i, Err: err}
				break
			}
			outs[k][i], found[k][i] = e, n
		}
	}
	if anyRefused(ops) {
		return nil // rolled back and run again without the refused calls
	}
	for k, out := range outs {
		for i, e := range out {
			if e != nil {
				b.add(e, ops[k].in[i])
			}
		}
	}
	if err := b.write(ctx, t); err != nil {
		return err
	}
	for k, p := range ops {
		p.out = make([]store.Revoked, len(p.in))
		for i, e := range outs[k] {
			p.out[i].Sessions = found[k][i]
			if e != nil {
				p.out[i].Entry = *e
			}
		}
	}
	return nil
}

// apply revokes one item on the batch's state and returns its entry (nil
// for a session already revoked) and the live sessions it found (see
// store.Revoked).
func (b *revokeBatch) apply(it store.Revocation) (*revocation.Entry, int, error) {
	now := micros(it.Now)
	if c := it.Cause; c != "" && (it.SessionID == "" || (c != store.CauseSessionRevoke && c != store.CauseBindingFailed)) {
		return nil, 0, fmt.Errorf("cause %q is not one of a session revocation", c)
	}
	if it.SessionID != "" {
		r := b.sessions[it.SessionID]
		if r == nil {
			return nil, 0, fmt.Errorf("session %q: %w", it.SessionID, store.ErrNotFound)
		}
		if r.revoked {
			return nil, 0, nil
		}
		r.end(now)
		b.audit = append(b.audit, store.AuditRecord{At: it.Now, Actor: it.Actor, Action: sessionCause(it), Target: it.SessionID})
		// A session entry names only the session: verifiers key it by sid.
		return &revocation.Entry{Kind: revocation.KindSession, Session: it.SessionID, CreatedAt: it.Now, ExpiresAt: it.ExpiresAt}, 1, nil
	}
	gen := b.gens[it.Subject]
	b.gens[it.Subject]++
	live := 0
	for _, r := range b.bySubject[it.Subject] {
		if r.revoked || r.expires <= now {
			continue
		}
		live++
		if it.Claims != nil {
			c := string(it.Claims)
			r.claims, r.claimsSet = &c, true
		}
		if it.EndSessions {
			r.end(now)
		}
	}
	b.audit = append(b.audit, store.AuditRecord{At: it.Now, Actor: it.Actor, Action: "subject.revoke", Target: it.Subject})
	return &revocation.Entry{Kind: revocation.KindSubject, Subject: it.Subject, Generation: gen,
		CreatedAt: it.Now, ExpiresAt: it.ExpiresAt}, live, nil
}

// sessionCause is a session item's cause: its own, else an ordinary
// revocation.
func sessionCause(it store.Revocation) string {
	if it.Cause != "" {
		return it.Cause
	}
	return store.CauseSessionRevoke
}

func (r *sessionRow) end(now int64) { r.revoked, r.revokedAt = true, now }

// add queues an item's entry with its detail and the status list slots it
// covers.
func (b *revokeBatch) add(e *revocation.Entry, it store.Revocation) {
	c := coverItem{entry: len(b.entries), now: micros(it.Now), until: micros(it.ExpiresAt)}
	var d store.EntryDetail
	if it.SessionID != "" {
		d = detail(sessionCause(it), it.Actor)
		d.Subject = b.sessions[it.SessionID].subject
		c.sessionID = it.SessionID
	} else {
		d = detail(store.CauseSubjectRevoke, it.Actor)
		d.EndSessions, d.Claims = it.EndSessions, it.Claims
		c.subject, c.gen = it.Subject, e.Generation
	}
	b.entries, b.details, b.covers = append(b.entries, e), append(b.details, d), append(b.covers, c)
}

// detail starts an entry's detail from its cause and actor.
func detail(cause string, a store.Actor) store.EntryDetail {
	return store.EntryDetail{Cause: cause, By: a.By, Reason: a.Reason, Entity: a.Entity}
}

// write stores what the batch changed: sessions, log entries, audit.
func (b *revokeBatch) write(ctx context.Context, t *tx) error {
	var ended, changed []string
	var at []int64
	var claims []*string
	for id, r := range b.sessions {
		if r.revokedAt != 0 {
			ended, at = append(ended, id), append(at, r.revokedAt)
		}
		if r.claimsSet {
			changed, claims = append(changed, id), append(claims, r.claims)
		}
	}
	if len(changed) > 0 {
		if err := setSessionTimes(ctx, t, "revoked_at", ended, at); err != nil {
			return err
		}
	} else if len(ended) > 0 {
		// Rides on the slots' read, which reads no session; the rows are
		// locked already.
		q, args := sessionTimes(t.d, "revoked_at", ended, at)
		if err := t.later(ctx, q, args...); err != nil {
			return fmt.Errorf("sessions revoked_at: %w", err)
		}
	}
	if len(changed) > 0 {
		from, args := t.d.from(newRows("r", len(changed)).text("id", changed).nullText("claims", claims))
		if _, err := t.exec(ctx, `UPDATE sessions SET claims = r.claims FROM `+from+` WHERE sessions.id = r.id`, args...); err != nil {
			return fmt.Errorf("session claims: %w", err)
		}
	}
	slots, err := coverSlots(ctx, t, b.covers)
	if err != nil {
		return err
	}
	for i := range b.details {
		b.details[i].Slots = slots[i]
	}
	// The audit rides on the log head's update (an INSERT locks no row
	// anyone waits for).
	if err := recordLater(ctx, t, b.audit); err != nil {
		return err
	}
	return appendEntries(ctx, t, b.entries, b.details)
}

// lockSubjects raises the generation of every subject cut off in the batch
// by the number of its cutoffs, and notes the first generation each hands
// out.
func (b *revokeBatch) lockSubjects(ctx context.Context, t *tx, ops []*pending[[]store.Revocation, []store.Revoked]) error {
	var subjects []string
	for _, p := range ops {
		for _, it := range p.in {
			if it.SessionID == "" {
				subjects = append(subjects, it.Subject)
			}
		}
	}
	last, err := bumpSubjects(ctx, t, subjects, true)
	if err != nil {
		return err
	}
	b.gens = make(map[string]int64, len(last))
	for _, sub := range subjects {
		b.gens[sub]-- // one for each cutoff
	}
	for sub, gen := range last {
		b.gens[sub] += gen + 1
	}
	return nil
}

// lockSessionsQuery reads the sessions named by ids and the live ones of
// subjects at since, in id order, locking them. Without subjects (session
// revocations alone) it is a simpler statement, cheaper to plan and run.
func lockSessionsQuery(d Dialect, ids, subjects []string, since int64) (string, []any) {
	const columns = `SELECT id, subject, claims, expires_at, revoked_at FROM sessions`
	if len(subjects) == 0 {
		in, args := d.in("id", ids)
		return columns + ` WHERE ` + in + ` ORDER BY id` + d.lock(), args
	}
	idFrom, idArgs := d.from(newRows("i", len(ids)).text("id", ids))
	subFrom, subArgs := d.from(newRows("u", len(subjects)).text("sub", subjects))
	return columns + `
		WHERE id IN (SELECT i.id FROM ` + idFrom + `
			UNION SELECT l.id FROM sessions l WHERE l.subject IN (SELECT u.sub FROM ` + subFrom + `)
				AND l.revoked_at IS NULL AND l.expires_at > ?)
		ORDER BY id` + d.lock(), append(append(idArgs, subArgs...), since)
}

// lockSessions locks, in id order, the sessions named by the batch and the
// live sessions of the subjects it cuts off. Locking them even for a cutoff
// that changes none orders it after any refresh of them in flight (which
// locks the session first), so a status list slot such a refresh gives a
// session is one coverSlots sees.
func (b *revokeBatch) lockSessions(ctx context.Context, t *tx, ops []*pending[[]store.Revocation, []store.Revoked]) error {
	var ids, subjects []string
	var since int64
	for _, p := range ops {
		for _, it := range p.in {
			switch {
			case it.SessionID != "":
				ids = append(ids, it.SessionID)
			default:
				subjects = append(subjects, it.Subject)
				if now := micros(it.Now); since == 0 || now < since {
					since = now
				}
			}
		}
	}
	b.sessions = make(map[string]*sessionRow, len(ids))
	b.bySubject = make(map[string][]*sessionRow)
	if len(ids) == 0 && len(subjects) == 0 {
		return nil
	}
	q, args := lockSessionsQuery(t.d, ids, subjects, since)
	rs, err := t.query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("lock sessions: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			r       sessionRow
			claims  sql.NullString
			revoked sql.NullInt64
		)
		if err := rs.Scan(&r.id, &r.subject, &claims, &r.expires, &revoked); err != nil {
			return fmt.Errorf("lock sessions: %w", err)
		}
		if claims.Valid {
			r.claims = &claims.String
		}
		r.revoked = revoked.Valid
		b.sessions[r.id] = &r
		if !r.revoked {
			b.bySubject[r.subject] = append(b.bySubject[r.subject], &r)
		}
	}
	return rs.Err()
}
