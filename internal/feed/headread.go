package feed

import (
	"context"
	"sync"
)

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
		r.mu.Lock()
		read := r.next
		r.next = nil
		if read == nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		read.head, read.err = h.src.Head(h.stopCtx)
		close(read.done)
	}
}
