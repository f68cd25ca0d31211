package statuslist

import (
	"context"
	"sync"
	"time"
)

// syncGroup runs fn for callers that each need a run that began after they
// called: callers arriving while a run is under way wait for the next one,
// and share it. At most one run is under way at a time, so however many
// lists are fetched at once, the store sees one head read at a time.
type syncGroup struct {
	fn func(ctx context.Context) error

	mu      sync.Mutex
	running bool
	next    *syncCall // not started yet; joined by new callers
}

type syncCall struct {
	done chan struct{}
	err  error
}

// syncTimeout bounds one run, which serves many callers and so cannot use
// any one caller's context.
const syncTimeout = 10 * time.Second

func (g *syncGroup) do(ctx context.Context) error {
	g.mu.Lock()
	if g.next == nil {
		g.next = &syncCall{done: make(chan struct{})}
	}
	c := g.next
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop runs the pending call until none is left.
func (g *syncGroup) loop() {
	for {
		g.mu.Lock()
		c := g.next
		g.next = nil
		if c == nil {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
		c.err = g.fn(ctx)
		cancel()
		close(c.done)
	}
}
