package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// BindSession implements store.Sessions. The session's row is locked
// first, so two bindings of one session run one after the other and the
// second sees the first: it is either the same key (nothing to do) or
// ErrBound, never a replaced key.
func (s *Store) BindSession(ctx context.Context, id string, b store.Binding, now time.Time, a store.Actor) (store.Session, error) {
	var out store.Session
	err := s.inTx(ctx, "bind session", func(t *tx) error {
		ss, err := scanSession(t.queryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`+t.d.lock(), id))
		if err != nil {
			return notFound(err, fmt.Sprintf("session %q", id))
		}
		switch {
		case !ss.RevokedAt.IsZero() || !ss.ExpiresAt.After(now):
			return fmt.Errorf("session %q has ended: %w", id, store.ErrNotFound)
		case ss.Binding.Bound() && ss.Binding.Kind == b.Kind && ss.Binding.Thumbprint == b.Thumbprint:
			out = ss
			return nil
		case ss.Binding.Bound():
			return fmt.Errorf("session %q: %w", id, store.ErrBound)
		}
		if _, err := t.exec(ctx, `UPDATE sessions SET binding_kind = ?, binding_jkt = ?, binding_key = ?, bound_at = ?
			WHERE id = ?`, b.Kind, b.Thumbprint, claimsText(b.Key), micros(now), id); err != nil {
			return err
		}
		ss.Binding = store.Binding{Kind: b.Kind, Thumbprint: b.Thumbprint, Key: b.Key, BoundAt: stored(now)}
		out = ss
		return record(ctx, t, bindRecord(id, b.Kind, now, a))
	})
	if err != nil {
		return store.Session{}, err
	}
	return out, nil
}
