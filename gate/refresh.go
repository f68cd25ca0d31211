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
// authority sees one refresh and no reuse. A request that arrives after the
// exchange with the old cookie (sent before the browser stored the new one,
// or from a browser that went away before the answer reached it) gets the
// same answer from memory (spentTokens), not from the authority, which
// would take it for reuse past its grace window. Gates do not coordinate
// with each other: two gates exchanging the same token at once are told the
// same successor by the authority's grace window (--refresh-grace).
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
	calls    map[tokenKey]*refreshCall // by refresh token, while in flight
	spent    *spentTokens              // by refresh token, once exchanged
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
	return &refresher{exchange: exchange, limit: limit, now: now, calls: make(map[tokenKey]*refreshCall),
		spent: newSpentTokens(spentMemory)}
}

// refresh returns the tokens that replace rt, for a request from the client
// address addr (httpguard.AddrKey), whose limit it is charged to, by holder
// (holderOf), to whom alone a remembered answer is handed; "" for none. The exchange runs on its own context,
// bounded by authorityTimeout, so a browser that goes away does not fail
// the exchange for the requests waiting on it; ctx bounds only this
// caller's wait. Joining an exchange in flight costs nothing, and neither
// does an answer from memory (see remembered).
func (f *refresher) refresh(ctx context.Context, rt, addr, holder string) (client.Tokens, error) {
	if !secret.IsRefreshToken(rt) {
		return client.Tokens{}, errNotRefreshToken
	}
	k := keyOf(rt)
	f.mu.Lock()
	if tok, ok := f.remembered(k, holder); ok {
		f.mu.Unlock()
		return tok, nil
	}
	c, ok := f.calls[k]
	if !ok {
		if d := f.limit.Wait(addr, 1, f.now()); d > 0 {
			f.mu.Unlock()
			return client.Tokens{}, &refreshLimited{d}
		}
		c = &refreshCall{done: make(chan struct{})}
		f.calls[k] = c
		go f.run(k, rt, addr, holder, c)
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
		return client.Tokens{}, ctx.Err()
	}
}

// remembered returns the answer of an earlier exchange of the token with
// key k made for holder (spentTokens), unless its successor has been
// exchanged or is being exchanged since: whoever presents k then is a
// rotation behind the session, and the authority must see it. f.mu is held.
func (f *refresher) remembered(k tokenKey, holder string) (client.Tokens, bool) {
	tok, ok := f.spent.get(k, holder, f.now())
	if !ok {
		return client.Tokens{}, false
	}
	next := keyOf(tok.RefreshToken)
	if _, exchanging := f.calls[next]; exchanging || f.spent.has(next) {
		return client.Tokens{}, false
	}
	return tok, true
}

func (f *refresher) run(k tokenKey, rt, addr, holder string, c *refreshCall) {
	ctx, cancel := context.WithTimeout(context.Background(), authorityTimeout)
	defer cancel()
	c.tok, c.err = f.exchange(ctx, rt)
	if isRefused(c.err) {
		f.limit.Charge(addr, refreshFailureCost-1, f.now())
	}
	f.mu.Lock()
	if c.err == nil {
		f.spent.put(k, holder, c.tok, f.now())
	}
	delete(f.calls, k)
	f.mu.Unlock()
	close(c.done)
}
