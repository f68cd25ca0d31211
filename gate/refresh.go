package gate

import (
	"context"
	"sync"

	"github.com/tegata-dev/tegata/client"
)

// refresher exchanges refresh tokens at the authority, one exchange per
// refresh token at a time: a page that loads ten resources with an expired
// access token makes ten requests carrying the same refresh token, and the
// second to tenth wait for the first exchange and share its answer, so the
// authority sees one refresh and no reuse. Gates do not coordinate with each
// other: two gates exchanging the same token at once are told the same
// successor by the authority's grace window (--refresh-grace), and a request
// that arrives after the exchange with the old cookie (sent before the
// browser stored the new one) is answered the same way.
type refresher struct {
	auth  *client.Client
	mu    sync.Mutex
	calls map[string]*refreshCall // by refresh token, while in flight
}

// refreshCall is one exchange in flight. tok and err are written before
// done is closed and read only after.
type refreshCall struct {
	done    chan struct{}
	tok     client.Tokens
	err     error
	waiters int // requests sharing it besides the first; guarded by refresher.mu
}

func newRefresher(auth *client.Client) *refresher {
	return &refresher{auth: auth, calls: make(map[string]*refreshCall)}
}

// refresh returns the tokens that replace rt. The exchange runs on its own
// context, bounded by authorityTimeout, so a browser that goes away does not
// fail the exchange for the requests waiting on it; ctx bounds only this
// caller's wait.
func (f *refresher) refresh(ctx context.Context, rt string) (client.Tokens, error) {
	f.mu.Lock()
	c, ok := f.calls[rt]
	if ok {
		c.waiters++
	} else {
		c = &refreshCall{done: make(chan struct{})}
		f.calls[rt] = c
		go f.run(rt, c)
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
		return client.Tokens{}, ctx.Err()
	}
}

func (f *refresher) run(rt string, c *refreshCall) {
	ctx, cancel := context.WithTimeout(context.Background(), authorityTimeout)
	defer cancel()
	c.tok, c.err = f.auth.Refresh(ctx, rt)
	f.mu.Lock()
	delete(f.calls, rt)
	f.mu.Unlock()
	close(c.done)
}
