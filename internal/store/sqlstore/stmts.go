package sqlstore

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
)

// The statements of write transactions. Each is rebound to the dialect's
// placeholders, and carries the writes put off by later (Postgres).

func (t *tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	q, args = t.carry(q, args)
	return t.ExecContext(ctx, t.d.rebind(q), args...)
}

// statement is a statement with its arguments, prepared (st) when the
// dialect keeps statements prepared (Store.prepare).
type statement struct {
	st   *sql.Stmt
	q    string
	args []any
}

// execStatement runs st in t, unprepared while writes are deferred (carry).
func (t *tx) execStatement(ctx context.Context, st statement) (sql.Result, error) {
	if st.st == nil || len(t.deferred) > 0 {
		return t.exec(ctx, st.q, st.args...)
	}
	return t.StmtContext(ctx, st.st).ExecContext(ctx, st.args...)
}

// prepare returns q with args as a statement, prepared on the writer the
// first time with Dialect.PrepareOnce and kept, so that a statement a node
// runs every second is parsed once rather than at every run. Only
// statements whose text is one of a few may go through it: each text
// stays prepared until the store closes. It must not be called within a
// transaction (preparing takes a writer connection).
func (s *Store) prepare(ctx context.Context, q string, args ...any) (statement, error) {
	if !s.d.PrepareOnce {
		return statement{q: q, args: args}, nil
	}
	st, err := s.stmts.get(ctx, s.w, s.d.rebind(q))
	if err != nil {
		return statement{}, err
	}
	return statement{st: st, q: q, args: args}, nil
}

// stmtCache holds statements prepared on the writer pool, by text.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st, nil
}

// close closes the statements, before their pool.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		_ = st.Close()
		delete(c.m, q)
	}
}

func (t *tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q, args = t.carry(q, args)
	return t.QueryContext(ctx, t.d.rebind(q), args...)
}

func (t *tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	q, args = t.carry(q, args)
	return t.QueryRowContext(ctx, t.d.rebind(q), args...)
}

// later puts off a write (an INSERT, UPDATE or DELETE without RETURNING)
// until the transaction's next statement, which carries it as a WITH item,
// where the dialect allows (Dialect.WritableCTE); elsewhere it runs it now.
// A batch's statements each cost a round trip, which costs both processes
// far more CPU than most of them do; this saves the round trips of writes
// whose outcome the transaction never reads.
//
// The write and the statement that carries it run on one snapshot and do
// not see each other's changes, so the caller must make sure that the next
// statement neither reads nor writes the rows the write changes, and that
// the write takes no row lock that the transaction could be made to wait
// for (rows it locked before are fine) after the carrying statement has
// taken locks of its own: later must keep the global lock order of batch.go.
func (t *tx) later(ctx context.Context, q string, args ...any) error {
	if !t.d.WritableCTE {
		_, err := t.exec(ctx, q, args...)
		return err
	}
	t.deferred = append(t.deferred, deferredWrite{q, args})
	return nil
}

// deferredWrite is a write put off by later.
type deferredWrite struct {
	q    string
	args []any
}

// carry prefixes q with the writes put off, as WITH items, and their
// arguments to args.
func (t *tx) carry(q string, args []any) (string, []any) {
	if len(t.deferred) == 0 {
		return q, args
	}
	var b strings.Builder
	var all []any
	b.WriteString("WITH ")
	for i, w := range t.deferred {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("deferred" + strconv.Itoa(i) + " AS (" + w.q + ")")
		all = append(all, w.args...)
	}
	t.deferred = nil
	if rest, ok := strings.CutPrefix(q, "WITH "); ok {
		b.WriteString(", " + rest)
	} else {
		b.WriteString(" " + q)
	}
	return b.String(), append(all, args...)
}

// flush runs the writes still put off, if any, before a commit.
func (t *tx) flush(ctx context.Context) error {
	if len(t.deferred) == 0 {
		return nil
	}
	_, err := t.exec(ctx, `SELECT 1`)
	return err
}
