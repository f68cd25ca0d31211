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
		e, err = endSession(ctx, t, id, now, expiresAt)
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

// endSession marks a live session revoked and appends its entry. A session
// entry names only the session: verifiers key it by sid.
func endSession(ctx context.Context, t *tx, id string, now, expiresAt time.Time) (revocation.Entry, error) {
	if _, err := t.exec(ctx, `UPDATE sessions SET revoked_at = ? WHERE id = ?`, micros(now), id); err != nil {
		return revocation.Entry{}, err
	}
	return appendEntry(ctx, t, revocation.Entry{
		Kind: revocation.KindSession, Session: id, CreatedAt: now, ExpiresAt: expiresAt,
	})
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
		var err error
		e, err = appendEntry(ctx, t, revocation.Entry{
			Kind: revocation.KindSubject, Subject: r.Subject, Generation: gen,
			CreatedAt: r.Now, ExpiresAt: r.ExpiresAt,
		})
		if err != nil {
			return err
		}
		return record(ctx, t, store.AuditRecord{At: r.Now, Actor: r.Actor, Action: "subject.revoke", Target: r.Subject})
	})
	return e, err
}

// changeLiveSessions replaces the claims of, and optionally ends, the live
// sessions of r.Subject.
func changeLiveSessions(ctx context.Context, t *tx, r store.SubjectRevocation) error {
	const live = ` WHERE subject = ? AND revoked_at IS NULL AND expires_at > ?`
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
