package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// RevokeSession implements store.Sessions.
func (s *Store) RevokeSession(ctx context.Context, id string, now, expiresAt time.Time, a store.Actor) (revocation.Entry, error) {
	var e revocation.Entry
	err := s.inTx(ctx, "revoke session", func(t *tx) error {
		ss, err := lockSession(ctx, t, id)
		if err != nil {
			return err
		}
		if !ss.RevokedAt.IsZero() {
			return nil
		}
		e, err = endSession(ctx, t, ss, now, expiresAt, detail(store.CauseSessionRevoke, a))
		if err != nil {
			return err
		}
		return record(ctx, t, store.AuditRecord{At: now, Actor: a, Action: "session.revoke", Target: id})
	})
	return e, err
}

// lockSession reads a session for update.
func lockSession(ctx context.Context, t *tx, id string) (store.Session, error) {
	row := t.queryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`+t.d.lock(), id)
	ss, err := scanSession(row)
	if err != nil {
		return store.Session{}, notFound(err, fmt.Sprintf("session %q", id))
	}
	return ss, nil
}

// endSession marks a live session revoked, covers its status list slots
// and appends its entry. A session entry names only the session: verifiers
// key it by sid; the detail names its subject for the standards outputs.
func endSession(ctx context.Context, t *tx, ss store.Session, now, expiresAt time.Time, d store.EntryDetail) (revocation.Entry, error) {
	if _, err := t.exec(ctx, `UPDATE sessions SET revoked_at = ? WHERE id = ?`, micros(now), ss.ID); err != nil {
		return revocation.Entry{}, err
	}
	var err error
	if d.Slots, err = coverSlots(ctx, t, now, expiresAt, `session_id = ?`, ss.ID); err != nil {
		return revocation.Entry{}, err
	}
	d.Subject = ss.Subject
	return appendEntry(ctx, t, revocation.Entry{
		Kind: revocation.KindSession, Session: ss.ID, CreatedAt: now, ExpiresAt: expiresAt,
	}, d)
}

// detail starts an entry's detail from its cause and actor.
func detail(cause string, a store.Actor) store.EntryDetail {
	return store.EntryDetail{Cause: cause, By: a.By, Reason: a.Reason, Entity: a.Entity}
}

// RevokeSubject implements store.Sessions. The subject row is upserted first:
// its lock keeps concurrent cutoffs of one subject in order.
func (s *Store) RevokeSubject(ctx context.Context, r store.SubjectRevocation) (revocation.Entry, error) {
	var e revocation.Entry
	err := s.inTx(ctx, "revoke subject", func(t *tx) error {
		var gen int64
		if err := t.queryRow(ctx, `INSERT INTO subjects (subject, generation) VALUES (?, 1)
			ON CONFLICT (subject) DO UPDATE SET generation = subjects.generation + 1
			RETURNING generation`, r.Subject).Scan(&gen); err != nil {
			return err
		}
		if err := changeLiveSessions(ctx, t, r); err != nil {
			return err
		}
		d := detail(store.CauseSubjectRevoke, r.Actor)
		d.EndSessions, d.Claims = r.EndSessions, r.Claims
		// After the sessions' rows are locked (changeLiveSessions), so a
		// refresh that was giving one of them a new slot has committed it.
		var err error
		if d.Slots, err = coverSlots(ctx, t, r.Now, r.ExpiresAt, `subject = ? AND generation < ?`, r.Subject, gen); err != nil {
			return err
		}
		e, err = appendEntry(ctx, t, revocation.Entry{
			Kind: revocation.KindSubject, Subject: r.Subject, Generation: gen,
			CreatedAt: r.Now, ExpiresAt: r.ExpiresAt,
		}, d)
		if err != nil {
			return err
		}
		return record(ctx, t, store.AuditRecord{At: r.Now, Actor: r.Actor, Action: "subject.revoke", Target: r.Subject})
	})
	return e, err
}

// changeLiveSessions locks the live sessions of r.Subject, replaces their
// claims and optionally ends them. The lock orders this cutoff after any
// refresh of those sessions in flight (which locks the session row first),
// so slots such a refresh allocates are seen by coverSlots.
func changeLiveSessions(ctx context.Context, t *tx, r store.SubjectRevocation) error {
	const live = ` WHERE subject = ? AND revoked_at IS NULL AND expires_at > ?`
	if t.d.ForUpdate != "" {
		rows, err := t.QueryContext(ctx, t.d.rebind(`SELECT id FROM sessions`+live+` `+t.d.ForUpdate),
			r.Subject, micros(r.Now))
		if err != nil {
			return err
		}
		for rows.Next() { // every row is read, so every lock is taken
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	if r.Claims != nil {
		if _, err := t.exec(ctx, `UPDATE sessions SET claims = ?`+live,
			claimsArg(r.Claims), r.Subject, micros(r.Now)); err != nil {
			return err
		}
	}
	if r.EndSessions {
		if _, err := t.exec(ctx, `UPDATE sessions SET revoked_at = ?`+live,
			micros(r.Now), r.Subject, micros(r.Now)); err != nil {
			return err
		}
	}
	return nil
}
