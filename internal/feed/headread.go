package feed

import (
	"context"
	"sync"
	"time"
)

// headReadSpacing is the least time between the starts of two reads of the
// Source's head for opening streams: the first stream to open after a
// quiet spell gets its read at once, and streams that open in a steady
// stream (verifiers connecting a few hundred a second, each read a query
// and a few system calls) share one read per spacing instead of costing
// one each. A stream's first heartbeat waits for its read, by that much
// at most.
const headReadSpacing = 10 * time.Millisecond

// headReads shares reads of the Source's head among the streams that open
// at once: each stream needs a head read that began after it opened (its
// floor, see conn), and a reconnect storm would otherwise cost the store
// one query per stream. A stream joins the next read, never one already
// running, so the read it gets began after it asked; reads run one after
// another, each for everyone who asked meanwhile.
type headReads struct {
	mu      sync.Mutex
	next    *headRead // the read the next askers join; nil when nobody waits
	running bool      // a goroutine is running reads
	// last is when the last read began (wall clock: pacing, not logic);
	// used by the goroutine running reads only.
	last time.Time
}

// headRead is one read of the head, shared by whoever joined it.
type headRead struct {
	done    chan struct{}
	head    int64
	err     error
	joiners int // how many asked for it
}

// sourceHead returns the Source's head, read after the call began.
func (h *Hub) sourceHead(ctx context.Context) (int64, error) {
	r := &h.heads
	r.mu.Lock()
	if r.next == nil {
		r.next = &headRead{done: make(chan struct{})}
	}
	read := r.next
	read.joiners++
	if !r.running {
		r.running = true
		go h.readHeads()
	}
	r.mu.Unlock()
	select {
	case <-read.done:
		return read.head, read.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// readHeads runs reads until nobody waits for one.
func (h *Hub) readHeads() {
	r := &h.heads
	for {
		// Who asks while the read waits for its turn joins it: the read
		// begins after they asked all the same.
		if d := headReadSpacing - time.Since(r.last); d > 0 && !sleep(h.stopCtx, d) {
			h.failHeads(h.stopCtx.Err())
			return
		}
		r.mu.Lock()
		read := r.next
		r.next = nil
		if read == nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		r.last = time.Now()
		read.head, read.err = h.src.Head(h.stopCtx)
		close(read.done)
	}
}

// failHeads ends the reads with err: the hub stopped while a read waited
// for its turn.
func (h *Hub) failHeads(err error) {
	r := &h.heads
	r.mu.Lock()
	read := r.next
	r.next, r.running = nil, false
	r.mu.Unlock()
	if read != nil {
		read.err = err
		close(read.done)
	}
}
