package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tegata-dev/tegata/internal/store"
)

// Reasons given with store.Refused.
const (
	reasonUnknown        = "unknown token"
	reasonExpired        = "expired"
	reasonSessionRevoked = "session revoked"
	reasonSessionExpired = "session expired"
)

// refreshRow is a stored refresh token.
type refreshRow struct {
	sessionID string
	expiresAt int64
	usedAt    sql.NullInt64
	successor []byte
	sealed    []byte
}

// RotateRefresh implements store.Sessions. The presented token's row is
// locked first, so concurrent presentations of one token run one after the
// other and each sees what the previous one did: one Rotated, then Replayed
// (or Reused), never a second successor. It is all one transaction, so a
// crash leaves either the old state or the whole rotation.
func (s *Store) RotateRefresh(ctx context.Context, r store.Rotation) (store.RotateResult, error) {
	var res store.RotateResult
	err := s.inTx(ctx, "rotate refresh", func(t *tx) error {
		var err error
		res, err = rotate(ctx, t, r)
		return err
	})
	if err != nil {
		return store.RotateResult{}, err
	}
	return res, nil
}

func rotate(ctx context.Context, t *tx, r store.Rotation) (store.RotateResult, error) {
	tok, err := lockRefresh(ctx, t, r.Presented)
	if errors.Is(err, sql.ErrNoRows) {
		return store.RotateResult{Outcome: store.Refused, Reason: reasonUnknown}, nil
	}
	if err != nil {
		return store.RotateResult{}, err
	}
	// The session is locked before the generation is read: a concurrent
	// RevokeSubject that changes this session's claims must either commit
	// before (both new values seen) or wait for us (both old values).
	ss, err := lockSession(ctx, t, tok.sessionID)
	if err != nil {
		return store.RotateResult{}, err
	}
	gen, err := generation(ctx, t, ss.Subject)
	if err != nil {
		return store.RotateResult{}, err
	}
	res := store.RotateResult{Session: ss, Generation: gen}
	if reason := refusal(tok, ss, micros(r.Now)); reason != "" {
		res.Outcome, res.Reason = store.Refused, reason
		return res, nil
	}
	if !tok.usedAt.Valid {
		if r.Check != nil {
			if err := r.Check(ss, gen); err != nil {
				return store.RotateResult{}, err
			}
		}
		return advance(ctx, t, r, res)
	}
	replay, err := isReplay(ctx, t, tok, r)
	if err != nil {
		return store.RotateResult{}, err
	}
	if replay {
		res.Outcome, res.Sealed = store.Replayed, tok.sealed
		return res, nil
	}
	return reuse(ctx, t, r, res)
}

func lockRefresh(ctx context.Context, t *tx, hash [32]byte) (refreshRow, error) {
	var tok refreshRow
	err := t.queryRow(ctx, `SELECT session_id, expires_at, used_at, successor_hash, successor_sealed
		FROM refresh_tokens WHERE hash = ?`+t.d.lock(), hash[:]).
		Scan(&tok.sessionID, &tok.expiresAt, &tok.usedAt, &tok.successor, &tok.sealed)
	return tok, err
}

// refusal says why a token may not be exchanged at all, or "".
func refusal(tok refreshRow, ss store.Session, now int64) string {
	switch {
	case tok.expiresAt <= now:
		return reasonExpired
	case !ss.RevokedAt.IsZero():
		return reasonSessionRevoked
	case micros(ss.ExpiresAt) <= now:
		return reasonSessionExpired
	}
	return ""
}

// advance rotates a current token: it becomes used and Next current.
func advance(ctx context.Context, t *tx, r store.Rotation, res store.RotateResult) (store.RotateResult, error) {
	id := res.Session.ID
	// "used_at IS NULL" is a second guard behind the row lock: should the
	// lock ever be missing, a concurrent rotation fails here instead of
	// forking the chain.
	n, err := rowsAffected(t.exec(ctx, `UPDATE refresh_tokens SET used_at = ?, successor_hash = ?, successor_sealed = ?
		WHERE hash = ? AND used_at IS NULL`, micros(r.Now), r.Next.Hash[:], r.NextSealed, r.Presented[:]))
	if err != nil {
		return res, err
	}
	if n != 1 {
		return res, errors.New("presented token was rotated concurrently")
	}
	next := r.Next
	next.SessionID = id
	if err := insertRefresh(ctx, t, next); err != nil {
		if t.d.IsUnique(err) {
			return res, fmt.Errorf("next token: %w: %w", store.ErrConflict, err)
		}
		return res, err
	}
	if _, err := t.exec(ctx, `UPDATE sessions SET refreshed_at = ? WHERE id = ?`, micros(r.Now), id); err != nil {
		return res, err
	}
	if r.Slot != nil && (res.Session.Status.List == 0 || res.Session.Status.Generation < res.Generation) {
		// The first refresh after an access cutoff (or after status lists
		// were turned on): the session's tokens get a fresh entry, since the
		// old one is INVALID for good.
		ss := res.Session
		slot, err := allocateSlot(ctx, t, ss.ID, ss.Subject, ss.ExpiresAt, res.Generation, r.Slot)
		if err != nil {
			return res, err
		}
		if err := setSessionSlot(ctx, t, id, slot); err != nil {
			return res, err
		}
		res.Session.Status = slot
	}
	res.Outcome = store.Rotated
	res.Session.RefreshedAt = stored(r.Now)
	return res, nil
}

// isReplay reports whether a used token is presented again within Grace of
// its rotation while its successor is still unused (two tabs refreshing at
// once), rather than stolen. With no grace nothing is a replay.
func isReplay(ctx context.Context, t *tx, tok refreshRow, r store.Rotation) (bool, error) {
	if r.Grace <= 0 || r.Now.Sub(fromNullMicros(tok.usedAt)) > r.Grace {
		return false, nil
	}
	var succUsed sql.NullInt64
	err := t.queryRow(ctx, `SELECT used_at FROM refresh_tokens WHERE hash = ?`, tok.successor).Scan(&succUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // the successor is gone: nothing left to hand out
	}
	if err != nil {
		return false, err
	}
	return !succUsed.Valid, nil
}

// reuse handles a rotated token presented again: the session is revoked
// and the revocation recorded, all in the rotation's transaction.
func reuse(ctx context.Context, t *tx, r store.Rotation, res store.RotateResult) (store.RotateResult, error) {
	id := res.Session.ID
	e, err := endSession(ctx, t, res.Session, r.Now, r.RevokedUntil,
		detail(store.CauseSessionReuse, store.Actor{By: "system", Reason: "refresh token reuse", Entity: "system"}))
	if err != nil {
		return res, err
	}
	err = record(ctx, t, store.AuditRecord{
		At:     r.Now,
		Actor:  store.Actor{By: "system", Reason: "refresh token reuse"},
		Action: "session.reuse",
		Target: id,
	})
	if err != nil {
		return res, err
	}
	res.Outcome, res.Entry = store.Reused, e
	res.Session.RevokedAt = stored(r.Now)
	return res, nil
}
