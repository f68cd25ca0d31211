package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/tegata-dev/tegata/internal/store"
)

// writeHealth remembers the database's refusals to write (Dialect.Unwritable)
// until a probe shows it writes again. It reads no clock: callers decide how
// often to probe.
type writeHealth struct {
	// refusals counts refused writes; cleared is the count a successful
	// probe started at, so a refusal during that probe still counts.
	refusals, cleared atomic.Uint64
	last              atomic.Pointer[error]
	// errors counts every write that failed for a reason of the database's
	// (not a conflict, a missing row or a cancelled caller), for metrics.
	errors atomic.Uint64
}

// failed notes a failed write and returns err, wrapping store.ErrUnwritable
// when the database refused it for want of room or permission.
func (s *Store) failed(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, store.ErrNotFound) ||
		errors.Is(err, store.ErrConflict) || errors.Is(err, errRefused) || errors.Is(err, errProbed) {
		return err
	}
	s.health.errors.Add(1)
	if s.d.Unwritable == nil || !s.d.Unwritable(err) {
		return err
	}
	err = fmt.Errorf("%w: %w", store.ErrUnwritable, err)
	s.health.last.Store(&err)
	s.health.refusals.Add(1)
	return err
}

// Unwritable implements store.WriteHealth.
func (s *Store) Unwritable() error {
	if s.health.refusals.Load() <= s.health.cleared.Load() {
		return nil
	}
	if p := s.health.last.Load(); p != nil {
		return *p
	}
	return store.ErrUnwritable
}

// WriteErrors returns how many writes failed for a reason of the
// database's since the Store was opened.
func (s *Store) WriteErrors() uint64 { return s.health.errors.Load() }

// probeSize is the probe's payload: larger than a page (4 KiB on SQLite,
// 8 KiB on Postgres), so that the database must find room for it.
const probeSize = 9000

// errProbed rolls the probe back once its write went through.
var errProbed = errors.New("sqlstore: probe written")

// ProbeWrite implements store.WriteHealth: it inserts a session row whose
// device is probeSize random characters (incompressible, so Postgres
// cannot fold it into a page it has), then rolls the transaction back.
func (s *Store) ProbeWrite(ctx context.Context) error {
	start := s.health.refusals.Load()
	b := make([]byte, probeSize/2)
	_, _ = rand.Read(b)
	payload := hex.EncodeToString(b)
	err := s.inTx(ctx, "probe write", func(t *tx) error {
		if _, err := t.exec(ctx, `INSERT INTO sessions (id, subject, device, created_at, refreshed_at, expires_at)
			VALUES (?, '', ?, 0, 0, 0)`, "probe-"+payload[:16], payload); err != nil {
			return err
		}
		return errProbed
	})
	if errors.Is(err, errProbed) {
		for c := s.health.cleared.Load(); c < start && !s.health.cleared.CompareAndSwap(c, start); c = s.health.cleared.Load() {
		}
		return nil
	}
	return err
}
