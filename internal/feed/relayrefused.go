package feed

import (
	"context"
	"errors"
	"sync"
)

// refusedUpstream reports whether the upstream refuses the relay's key:
// every upstream refused it in a row, as the client counts a key refused
// (WaitOpened), not one node among several.
func (r *Relay) refusedUpstream(st State) bool {
	return st.Refusals >= len(r.cfg.URLs) && errors.Is(st.RefusedErr, ErrRefused)
}

// keyRefusal ends the relay's followers' streams and report streams when
// the upstream comes to refuse the relay's key, as a node ends those of a
// key it revokes: the followers, which carry the same key, then hear at
// once that it is refused (the relay refuses their next request) rather
// than at their next reconnect. Their records stay until they fall
// silent: a follower that lost its stream may still hold a lease.
type keyRefusal struct {
	mu     sync.Mutex
	ctx    context.Context // done once the upstream refuses the key
	cancel context.CancelFunc
}

// bind returns parent, ended also when the upstream refuses the key (at
// once if it does now), and the func that releases it.
func (f *keyRefusal) bind(parent context.Context) (context.Context, func()) {
	f.mu.Lock()
	if f.ctx == nil {
		f.ctx, f.cancel = context.WithCancel(context.Background())
	}
	refused := f.ctx
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(refused, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// set notes whether the upstream refuses the key now.
func (f *keyRefusal) set(refused bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case refused && f.cancel != nil:
		f.cancel()
	case !refused && f.ctx != nil && f.ctx.Err() != nil:
		f.ctx, f.cancel = nil, nil
	}
}

// watchRefusal keeps r.refused up to date with the client's state until
// ctx ends.
func (r *Relay) watchRefusal(ctx context.Context) {
	last := false
	for {
		err := r.client.WaitFor(ctx, func(st State) bool { return r.refusedUpstream(st) != last })
		if err != nil {
			return
		}
		last = r.refusedUpstream(r.client.State())
		r.refused.set(last)
	}
}
