package gate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/secret"
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
//
// Every exchange is paid from the gate's budget at the authority (its API
// key's rate limit), so a client making up refresh cookies could spend it
// for everyone. A cookie that is not shaped like a refresh token is refused
// without an exchange, and each client address may start RefreshLimit
// exchanges; one the authority refuses costs refreshFailureCost.
type refresher struct {
	exchange func(context.Context, string) (client.Tokens, error) // the authority's refresh
	limit    *httpguard.Limiter                                   // per client address; nil: none
	now      func() time.Time
	mu       sync.Mutex
	calls    map[string]*refreshCall // by refresh token, while in flight
}

// refreshCall is one exchange in flight. tok and err are written before
// done is closed and read only after.
type refreshCall struct {
	done chan struct{}
	tok  client.Tokens
	err  error
}

// refreshFailureCost is what a refused exchange costs its address, in
// exchanges: a client guessing refresh tokens gets a tenth of the budget
// of one refreshing real ones.
const refreshFailureCost = 10

// errNotRefreshToken: the refresh cookie cannot be a refresh token. It is
// refused as the authority would refuse it (invalid_grant), without asking.
var errNotRefreshToken = fmt.Errorf("gate: the refresh cookie is not shaped like a refresh token: %w", client.ErrInvalidGrant)

// refreshLimited: the client's address has started too many exchanges.
type refreshLimited struct{ wait time.Duration }

func (e *refreshLimited) Error() string {
	return fmt.Sprintf("gate: too many refreshes from this address; retry in %v", e.wait)
}

func newRefresher(exchange func(context.Context, string) (client.Tokens, error), limit *httpguard.Limiter, now func() time.Time) *refresher {
	return &refresher{exchange: exchange, limit: limit, now: now, calls: make(map[string]*refreshCall)}
}

// refresh returns the tokens that replace rt, for a request from the client
// address addr (httpguard.AddrKey). The exchange runs on its own context,
// bounded by authorityTimeout, so a browser that goes away does not fail
// the exchange for the requests waiting on it; ctx bounds only this
// caller's wait. Joining an exchange in flight costs nothing.
func (f *refresher) refresh(ctx context.Context, rt, addr string) (client.Tokens, error) {
	if !secret.IsRefreshToken(rt) {
		return client.Tokens{}, errNotRefreshToken
	}
	f.mu.Lock()
	c, ok := f.calls[rt]
	if !ok {
		if d := f.limit.Wait(addr, 1, f.now()); d > 0 {
			f.mu.Unlock()
			return client.Tokens{}, &refreshLimited{d}
		}
		c = &refreshCall{done: make(chan struct{})}
		f.calls[rt] = c
		go f.run(rt, addr, c)
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
		return client.Tokens{}, ctx.Err()
	}
}

func (f *refresher) run(rt, addr string, c *refreshCall) {
	ctx, cancel := context.WithTimeout(context.Background(), authorityTimeout)
	defer cancel()
	c.tok, c.err = f.exchange(ctx, rt)
	if isRefused(c.err) {
		f.limit.Charge(addr, refreshFailureCost-1, f.now())
	}
	f.mu.Lock()
	delete(f.calls, rt)
	f.mu.Unlock()
	close(c.done)
}
