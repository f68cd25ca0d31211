package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// Group commit. Session creations, refresh rotations and revocations are
// each queued on a lane; one goroutine per lane takes everything queued (up
// to maxBatch rows), runs it in one transaction with a fixed number of
// statements whatever the batch size, commits once, and answers every
// caller. There is no deliberate wait: a lone write starts at once, and
// writes that arrive while a batch runs form the next one, so batches grow
// with load and a caller waits at most for the batch ahead of it.
//
// A batch is equivalent to its writes run one after the other in queue
// order: each lane's executor works through them in that order on what it
// read and locked, and writes the outcome with one statement per table.
// Ordering and durability are those of single writes: a caller is answered
// only after its batch committed; a log append takes its seqs from the
// log_head row, whose lock orders commits (see log.go); the whole batch
// wakes subscribers once.
//
// A write refused for itself (a revocation naming a session that does not
// exist) fails only its caller: the transaction is rolled back and run
// again without it. A statement that fails (a unique violation, a lost
// connection) cannot be pinned on one write, so the batch's writes are
// then run again one per transaction, each caller getting its own outcome.
// A failed COMMIT is not retried: the outcome is unknown, as it is for a
// single write, and every caller of the batch gets the error.
//
// Deadlocks between the lanes of one node, and between nodes on Postgres,
// are avoided by taking row locks in one global order: subjects and refresh
// tokens, then sessions, then log_head, each set of rows sorted by key.

// maxBatch bounds the rows of one batch, so that a batch (and the wait of
// the callers queued behind it) stays short. A single write larger than
// this (a bulk revocation) runs as a batch of its own.
const maxBatch = 1024

// batchTimeout bounds the transaction of a batch of up to maxBatch rows: a
// database that stops answering fails the batch's callers rather than
// holding the lane forever. A single write larger than maxBatch (a bulk
// revocation of 10,000 items) gets batchTimeout for every maxBatch rows it
// holds, so that a slow but working database (a loaded machine, the race
// detector) still commits it.
const batchTimeout = 30 * time.Second

// timeoutFor is the time a batch of rows rows may take.
func timeoutFor(rows int) time.Duration {
	return batchTimeout * time.Duration(max(1, (rows+maxBatch-1)/maxBatch))
}

// ErrClosed is returned by writes made after Close.
var ErrClosed = errors.New("sqlstore: store closed")

// errRefused makes a lane roll back a batch in which some writes were
// refused, to run it again without them.
var errRefused = errors.New("sqlstore: writes refused in the batch")

// pending is one caller's write waiting in a lane.
type pending[In, Out any] struct {
	ctx  context.Context
	in   In
	out  Out
	err  error // set by the executor for a refused write, or by the lane
	done chan struct{}
}

// executor runs a batch in t, in order. It sets p.out for each write and,
// for a write refused for itself, p.err (it must not set p.err for a failed
// statement: it returns that error instead).
type executor[In, Out any] func(ctx context.Context, t *tx, ops []*pending[In, Out]) error

// lane queues writes of one kind and commits them in batches.
type lane[In, Out any] struct {
	s      *Store
	op     string // for errors: "create session", ...
	exec   executor[In, Out]
	weight func(In) int // rows a write adds to a batch

	mu     sync.Mutex
	queue  []*pending[In, Out]
	closed bool
	wake   chan struct{} // buffered 1: the queue may have grown
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func newLane[In, Out any](s *Store, op string, exec executor[In, Out], weight func(In) int) *lane[In, Out] {
	l := &lane[In, Out]{s: s, op: op, exec: exec, weight: weight,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

// do queues a write and waits for its batch to commit. If ctx ends first it
// returns ctx's error; the write may still commit.
func (l *lane[In, Out]) do(ctx context.Context, in In) (Out, error) {
	p := &pending[In, Out]{ctx: ctx, in: in, done: make(chan struct{})}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		var zero Out
		return zero, ErrClosed
	}
	l.queue = append(l.queue, p)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	select {
	case <-p.done:
		return p.out, p.err
	case <-ctx.Done():
		var zero Out
		return zero, ctx.Err()
	}
}

func (l *lane[In, Out]) run() {
	defer close(l.done)
	for {
		if batch := l.take(); len(batch) > 0 {
			l.commit(batch)
			continue
		}
		select {
		case <-l.wake:
		case <-l.stop:
			l.close()
			return
		}
	}
}

// take removes the next batch from the queue: writes in queue order up to
// maxBatch rows, at least one. Writes whose caller has gone are dropped.
func (l *lane[In, Out]) take() []*pending[In, Out] {
	l.mu.Lock()
	defer l.mu.Unlock()
	var batch []*pending[In, Out]
	rows, i := 0, 0
	for ; i < len(l.queue); i++ {
		p := l.queue[i]
		if err := p.ctx.Err(); err != nil {
			p.finish(err)
			continue
		}
		w := l.weight(p.in)
		if len(batch) > 0 && rows+w > maxBatch {
			break
		}
		batch, rows = append(batch, p), rows+w
	}
	n := copy(l.queue, l.queue[i:])
	clear(l.queue[n:])
	l.queue = l.queue[:n]
	return batch
}

// close fails whatever is still queued; later writes fail at once.
func (l *lane[In, Out]) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, p := range l.queue {
		p.finish(ErrClosed)
	}
	l.queue = nil
}

// shutdown stops the lane after the batch in progress and waits for it.
// It may be called more than once.
func (l *lane[In, Out]) shutdown() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

func (p *pending[In, Out]) finish(err error) {
	if err != nil {
		p.err = err
	}
	close(p.done)
}

// commit runs a batch until every write in it has an outcome.
func (l *lane[In, Out]) commit(ops []*pending[In, Out]) {
	for len(ops) > 0 {
		committed, err := l.try(ops)
		switch {
		case committed:
			for _, p := range ops {
				p.finish(err) // err is a failed COMMIT: unknown outcome
			}
			return
		case errors.Is(err, errRefused):
			ops = l.dropRefused(ops)
		case len(ops) == 1 || !pinnable(err):
			for _, p := range ops {
				p.finish(err)
			}
			return
		default:
			for _, p := range ops {
				if err := p.ctx.Err(); err != nil {
					p.finish(err)
					continue
				}
				l.commit([]*pending[In, Out]{p})
			}
			return
		}
	}
}

// try runs ops in one transaction. committed reports whether COMMIT was
// sent; err is then its error, else why the batch was rolled back.
func (l *lane[In, Out]) try(ops []*pending[In, Out]) (committed bool, err error) {
	rows := 0
	for _, p := range ops {
		rows += l.weight(p.in)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeoutFor(rows))
	defer cancel()
	sqlTx, err := l.s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlstore: %s: begin: %w", l.op, l.s.failed(err))
	}
	t := &tx{Tx: sqlTx, d: l.s.d}
	for _, p := range ops {
		p.err = nil
		t.ask = t.ask || store.ConfirmationWanted(p.ctx)
	}
	err = l.exec(ctx, t, ops)
	if err == nil && anyRefused(ops) {
		err = errRefused
	}
	if err == nil {
		err = t.flush(ctx)
	}
	if err != nil {
		_ = sqlTx.Rollback()
		if !errors.Is(err, errRefused) {
			err = fmt.Errorf("sqlstore: %s: %w", l.op, l.s.failed(err))
		}
		return false, err
	}
	if err := l.s.commit(t); err != nil {
		return true, fmt.Errorf("sqlstore: %s: commit: %w", l.op, l.s.failed(err))
	}
	l.s.writes.Add(int64(len(ops)))
	l.s.batches.Add(1)
	return true, nil
}

// pinnable reports whether a failed batch may be worth running again one
// write at a time: not when the database did not answer in time, which
// every write alone would wait for again.
func pinnable(err error) bool {
	return !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

func anyRefused[In, Out any](ops []*pending[In, Out]) bool {
	for _, p := range ops {
		if p.err != nil {
			return true
		}
	}
	return false
}

// dropRefused answers the refused writes and returns the others.
func (l *lane[In, Out]) dropRefused(ops []*pending[In, Out]) []*pending[In, Out] {
	rest := ops[:0]
	for _, p := range ops {
		if p.err != nil {
			p.finish(fmt.Errorf("sqlstore: %s: %w", l.op, p.err))
		} else {
			rest = append(rest, p)
		}
	}
	return rest
}
