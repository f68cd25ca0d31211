// Package sqlstore implements store.Store once over database/sql, for every
// SQL backend (store/sqlite, store/postgres): refresh rotation, revocations
// and the revocation log exist in this one place, and a Dialect supplies what
// differs between databases.
//
// Every method that changes more than one row runs in one transaction on the
// writer pool; reads run on the reader pool. Session creations, refresh
// rotations and revocations of concurrent callers are committed in batches,
// one transaction each (group commit, see batch.go). Times are stored as integer Unix
// microseconds, so values come back truncated to the microsecond, in UTC.
//
// Log ordering: an append takes the next seqs by advancing the single
// log_head row in the same transaction as the rest of the change. That row
// lock serializes appenders, so transactions commit in seq order and a reader
// that saw seq n has seen every entry below n.
//
// A Store is safe for concurrent use by many goroutines.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/tegata-dev/tegata/internal/store"
)

// Store is store.Store and store.Notifier over database/sql.
type Store struct {
	w, r *sql.DB
	d    Dialect
	hub  hub
	// woken is the highest log head this process wakes its subscribers for
	// once it has committed its own append (see commit and Notified).
	woken atomic.Int64
	// heard and asked are what Heard returns.
	heard, asked atomic.Int64

	creates *lane[store.NewSession, store.Created]
	rotates *lane[store.Rotation, store.RotateResult]
	revokes *lane[[]store.Revocation, []store.Revoked]
	// writes and batches count the group-committed writes and the
	// transactions that committed them.
	writes, batches atomic.Int64
	// listeners receive Broadcast messages (see broadcast.go).
	listeners listeners
	// health remembers refused writes (see health.go).
	health writeHealth
	// stmts are the statements kept prepared on the writer (see prepare);
	// rstmts those kept prepared on the reader (see queryRowPrepared).
	stmts, rstmts stmtCache
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Notifier = (*Store)(nil)
)

// New migrates the schema through writer and returns a Store that writes
// through writer and reads through reader (the same pool for databases with
// concurrent writers). The Store owns both pools: Close closes them.
func New(ctx context.Context, writer, reader *sql.DB, d Dialect) (*Store, error) {
	if d.IsUnique == nil {
		return nil, fmt.Errorf("sqlstore: %s dialect has no IsUnique", d.Name)
	}
	s := &Store{w: writer, r: reader, d: d}

	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	s.creates = newLane(s, "create session", s.execCreate, func(store.NewSession) int { return 1 })
	s.rotates = newLane(s, "rotate refresh", s.execRotate, func(store.Rotation) int { return 1 })
	s.revokes = newLane(s, "revoke", s.execRevoke, func(items []store.Revocation) int { return len(items) })
	return s, nil
}

// WriteStats returns how many session creations, rotations and revocation
// calls have been committed, and in how many transactions.
func (s *Store) WriteStats() (writes, batches int64) {
	return s.writes.Load(), s.batches.Load()
}

// Close finishes the batches in progress, fails writes still queued with
// ErrClosed and closes both pools.
func (s *Store) Close() error {
	s.creates.shutdown()
	s.rotates.shutdown()
	s.revokes.shutdown()
	s.stmts.close()
	s.rstmts.close()
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	if err != nil {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}

// tx is a write transaction that remembers whether it appended to the log,
// so subscribers are woken once it commits.
type tx struct {
	*sql.Tx
	d        Dialect
	appended bool
	head     int64 // the log head after the append, if appended
	// ask says that a caller of the transaction waits for its append to
	// be confirmed (store.WithConfirmation): its notice says so.
	ask      bool
	deferred []deferredWrite // see later
}

// inTx runs fn in a write transaction and commits it unless fn fails. Errors
// are wrapped with op, the method's name for logs.
func (s *Store) inTx(ctx context.Context, op string, fn func(*tx) error) error {
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: begin: %w", op, s.failed(err))
	}
	t := &tx{Tx: sqlTx, d: s.d, ask: store.ConfirmationWanted(ctx)}
	err = fn(t)
	if err == nil {
		err = t.flush(ctx)
	}
	if err != nil {
		_ = sqlTx.Rollback()
		return fmt.Errorf("sqlstore: %s: %w", op, s.failed(err))
	}
	if err := s.commit(t); err != nil {
		return fmt.Errorf("sqlstore: %s: commit: %w", op, s.failed(err))
	}
	return nil
}

// exec runs a single statement on the writer, outside a transaction.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	res, err := s.w.ExecContext(ctx, s.d.rebind(q), args...)
	return res, s.failed(err)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.r.QueryContext(ctx, s.d.rebind(q), args...)
}

func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return s.r.QueryRowContext(ctx, s.d.rebind(q), args...)
}

// queryRowPrepared is queryRow for a read a node runs at every feed
// stream's start and more (the log's head): with Dialect.PrepareOnce its
// statement is prepared on the reader once and kept, as prepare keeps the
// writer's, rather than parsed at every run. Only a few statement texts
// may go through it: each stays prepared until the store closes.
func (s *Store) queryRowPrepared(ctx context.Context, q string, args ...any) (*sql.Row, error) {
	if !s.d.PrepareOnce {
		return s.queryRow(ctx, q, args...), nil
	}
	st, err := s.rstmts.get(ctx, s.r, s.d.rebind(q))
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(ctx, args...), nil
}

// conflict maps a unique violation to store.ErrConflict, keeping the
// driver's error for logs.
func (s *Store) conflict(err error) error {
	if err != nil && s.d.IsUnique(err) {
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	return err
}

// notFound maps sql.ErrNoRows to store.ErrNotFound.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return err
}

// rowsAffected returns how many rows a statement changed.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
