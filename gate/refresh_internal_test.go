package gate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/secret"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// fakeExchange stands in for the authority's refresh: it counts exchanges
// and, when hold is set, holds each until release is closed. A token in
// refused is answered invalid_grant. (The web tests exchange at a real
// authority; this one lets synctest see every caller blocked.)
type fakeExchange struct {
	mu      sync.Mutex
	calls   int
	hold    bool
	release chan struct{}
	refused map[string]bool
}

func newFakeExchange(hold bool) *fakeExchange {
	return &fakeExchange{hold: hold, release: make(chan struct{}), refused: map[string]bool{}}
}

func (x *fakeExchange) exchange(ctx context.Context, rt string) (client.Tokens, error) {
	x.mu.Lock()
	x.calls++
	n := x.calls
	x.mu.Unlock()
	if x.hold {
		select {
		case <-x.release:
		case <-ctx.Done():
			return client.Tokens{}, ctx.Err()
		}
	}
	if x.refused[rt] {
		return client.Tokens{}, &client.Error{Status: 400, Code: "invalid_grant", Description: "unknown refresh token"}
	}
	return client.Tokens{AccessToken: fmt.Sprintf("access-%d", n), ExpiresIn: 900, RefreshToken: successor(n)}, nil
}

// successor is the refresh token fakeExchange answers its nth exchange with.
func successor(n int) string { return refreshToken(1000 + n) }

func (x *fakeExchange) count() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.calls
}

// refreshToken returns a well-shaped refresh token, distinct per i.
func refreshToken(i int) string {
	var b [secret.RefreshBytes]byte
	b[0], b[1] = byte(i), byte(i>>8)
	return secret.NewRefreshToken(b)
}

func fixedNow() time.Time { return time.Unix(1_800_000_000, 0) }

// TestRefreshCoalesced: requests refreshing the same token at once share
// one exchange and get the same tokens; joining costs no allowance.
func TestRefreshCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newFakeExchange(true)
		f := newRefresher(x.exchange, httpguard.NewLimiter(1, 1), time.Now)
		rt := refreshToken(1)
		const n = 8
		type result struct {
			tok client.Tokens
			err error
		}
		results := make(chan result, n)
		for range n {
			go func() {
				got, err := f.refresh(context.Background(), rt, "192.0.2.1", "192.0.2.1")
				results <- result{got, err}
			}()
		}
		synctest.Wait() // every request is waiting on the one exchange
		if got := x.count(); got != 1 {
			t.Fatalf("exchanges with %d requests waiting = %d, want 1", n, got)
		}
		close(x.release)
		for range n {
			r := <-results
			if r.err != nil || r.tok.RefreshToken != successor(1) {
				t.Errorf("refresh = %q, %v, want every caller the one new token %q", r.tok.RefreshToken, r.err, successor(1))
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.calls) != 0 {
			t.Errorf("%d finished exchanges still listed as in flight", len(f.calls))
		}
	})
}

// TestRefreshCallerGivesUp: a request that goes away stops waiting, and
// the exchange it started still completes for the others.
func TestRefreshCallerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x := newFakeExchange(true)
		f := newRefresher(x.exchange, nil, time.Now)
		rt := refreshToken(2)
		gone, cancel := context.WithCancel(context.Background())
		first, second := make(chan error, 1), make(chan error, 1)
		go func() { _, err := f.refresh(gone, rt, "a", "a"); first <- err }()
		go func() { _, err := f.refresh(context.Background(), rt, "a", "a"); second <- err }()
		synctest.Wait()
		cancel()
		if err := <-first; !errors.Is(err, context.Canceled) {
			t.Errorf("the request that went away got %v, want context.Canceled", err)
		}
		close(x.release)
		if err := <-second; err != nil {
			t.Errorf("the request still waiting got %v, want the new tokens", err)
		}
		if got := x.count(); got != 1 {
			t.Errorf("exchanges = %d, want 1", got)
		}
	})
}

// TestRefreshNotShapedNotExchanged: a refresh cookie that cannot be a
// refresh token is refused as invalid_grant without asking the authority.
func TestRefreshNotShapedNotExchanged(t *testing.T) {
	x := newFakeExchange(false)
	f := newRefresher(x.exchange, nil, fixedNow)
	good := refreshToken(3)
	for _, rt := range []string{"", "garbage", good + "A", good[:len(good)-1], good[:40] + "+/=", good + "\n"} {
		if _, err := f.refresh(context.Background(), rt, "a", "a"); !errors.Is(err, errNotRefreshToken) || !isRefused(err) {
			t.Errorf("refresh(%q) = %v, want errNotRefreshToken, refused", rt, err)
		}
	}
	if got := x.count(); got != 0 {
		t.Errorf("exchanges for malformed cookies = %d, want 0", got)
	}
}

// TestRefreshLimitedPerAddress: each address may start its allowance of
// exchanges; a refused exchange costs refreshFailureCost; other addresses
// are not affected.
func TestRefreshLimitedPerAddress(t *testing.T) {
	x := newFakeExchange(false)
	f := newRefresher(x.exchange, httpguard.NewLimiter(1, 20), fixedNow)
	ctx := context.Background()
	next := 0
	exchange := func(addr string) error {
		next++
		_, err := f.refresh(ctx, refreshToken(next), addr, addr)
		return err
	}
	for i := range 20 {
		if err := exchange("198.51.100.1"); err != nil {
			t.Fatalf("exchange %d of a burst of 20 = %v, want success", i+1, err)
		}
	}
	var limited *refreshLimited
	if err := exchange("198.51.100.1"); !errors.As(err, &limited) || limited.wait <= 0 {
		t.Fatalf("exchange 21 = %v, want refreshLimited with a wait", err)
	}

	next++
	bad := refreshToken(next)
	x.refused[bad] = true
	if _, err := f.refresh(ctx, bad, "198.51.100.2", "198.51.100.2"); !isRefused(err) {
		t.Fatalf("refresh(unknown token) = %v, want refused", err)
	}
	for i := range 20 - refreshFailureCost {
		if err := exchange("198.51.100.2"); err != nil {
			t.Fatalf("exchange %d after one refused = %v, want success (%d left)", i+1, err, 20-refreshFailureCost)
		}
	}
	if err := exchange("198.51.100.2"); !errors.As(err, &limited) {
		t.Fatalf("exchange past what a refused one left = %v, want refreshLimited", err)
	}
	if got := x.count(); got != 20+1+20-refreshFailureCost {
		t.Errorf("exchanges = %d, want %d (none for a limited request)", got, 20+1+20-refreshFailureCost)
	}
}

// TestRefreshRemembersSpentToken: a token presented again after its
// exchange (by a browser that never received the answer) gets the same
// answer from memory, without a second exchange, the authority would take
// for reuse; only for the address that made the exchange, until the new
// access token expires, and not once the successor was exchanged in turn.
func TestRefreshRemembersSpentToken(t *testing.T) {
	clock := testtime.NewClock(fixedNow())
	x := newFakeExchange(false)
	f := newRefresher(x.exchange, nil, clock.Now)
	ctx := context.Background()
	const home, elsewhere = "192.0.2.7", "198.51.100.9"
	rt := refreshToken(10)
	first, err := f.refresh(ctx, rt, home, home)
	if err != nil {
		t.Fatal(err)
	}

	clock.Add(time.Minute)
	again, err := f.refresh(ctx, rt, home, home)
	if err != nil || again.RefreshToken != first.RefreshToken || again.AccessToken != first.AccessToken || x.count() != 1 {
		t.Fatalf("the spent token again = %q, %v after %d exchanges; want the same successor %q from memory, 1 exchange",
			again.RefreshToken, err, x.count(), first.RefreshToken)
	}
	if again.ExpiresIn != first.ExpiresIn-60 {
		t.Errorf("remembered ExpiresIn = %d, want what is left of %d after a minute", again.ExpiresIn, first.ExpiresIn)
	}

	if other, err := f.refresh(ctx, refreshToken(11), home, home); err != nil || other.RefreshToken == first.RefreshToken || x.count() != 2 {
		t.Errorf("another token = %q, %v after %d exchanges; want its own exchange and successor", other.RefreshToken, err, x.count())
	}
	if _, err := f.refresh(ctx, rt, elsewhere, elsewhere); err != nil || x.count() != 3 {
		t.Errorf("the spent token from another address: %v after %d exchanges, want it asked of the authority (3)", err, x.count())
	}

	// The owner moves on: the successor is exchanged in turn; the spent
	// token is now a rotation behind and goes to the authority.
	rt2 := refreshToken(12)
	second, err := f.refresh(ctx, rt2, home, home)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.refresh(ctx, second.RefreshToken, home, home); err != nil {
		t.Fatal(err)
	}
	n := x.count()
	if _, err := f.refresh(ctx, rt2, home, home); err != nil || x.count() != n+1 {
		t.Errorf("a spent token whose successor was exchanged: %v after %d exchanges, want it asked of the authority (%d)", err, x.count(), n+1)
	}

	clock.Add(15 * time.Minute) // past the remembered access token's expiry
	n = x.count()
	if _, err := f.refresh(ctx, rt, home, home); err != nil || x.count() != n+1 {
		t.Errorf("the spent token after the new access token expired: %v after %d exchanges, want it asked of the authority (%d)", err, x.count(), n+1)
	}
}

// TestRefreshSpentMemoryBounded: past its bound the memory forgets the
// oldest exchange first.
func TestRefreshSpentMemoryBounded(t *testing.T) {
	x := newFakeExchange(false)
	f := newRefresher(x.exchange, nil, fixedNow)
	f.spent = newSpentTokens(2)
	ctx := context.Background()
	for i := range 3 {
		if _, err := f.refresh(ctx, refreshToken(20+i), "a", "a"); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.spent.order.Len(); got != 2 {
		t.Errorf("remembered exchanges = %d, want the bound 2", got)
	}
	for i, want := range []int{3, 3, 4} { // 22 and 21 remembered; 20, the oldest, exchanged again
		if _, err := f.refresh(ctx, refreshToken(22-i), "a", "a"); err != nil || x.count() != want {
			t.Errorf("token %d again: %v after %d exchanges, want %d", 22-i, err, x.count(), want)
		}
	}
}
