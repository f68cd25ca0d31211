package httpguard

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter keeps a token bucket per key (a client address, an API key, a
// subject), forgetting idle ones, so that memory stays bounded however many
// keys a client makes up. A nil *Limiter limits nothing.
type Limiter struct {
	rate  float64
	burst int
	mu    sync.Mutex
	m     map[string]*bucket
	swept time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxBuckets bounds the keys a Limiter remembers (see sweep).
const maxBuckets = 100_000

// NewLimiter returns a limiter of perSecond events per key, burst at once
// (at least perSecond rounded up). perSecond <= 0: nil, no limit.
func NewLimiter(perSecond float64, burst int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = int(math.Ceil(perSecond))
	}
	return &Limiter{rate: perSecond, burst: burst, m: make(map[string]*bucket)}
}

// Wait takes n events of key's bucket and returns 0 if they may happen
// now; otherwise it takes nothing and returns how long until they could.
func (l *Limiter) Wait(key string, n int, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.bucket(key, now).ReserveN(now, n)
	if !r.OK() {
		return rate.InfDuration
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// Charge takes n more events of key's bucket, into debt if it has fewer:
// the cost of something that already happened (a failure weighing more
// than an attempt), paid by the key's next events. n is capped at the
// burst.
func (l *Limiter) Charge(key string, n int, now time.Time) {
	if l == nil || n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bucket(key, now).ReserveN(now, min(n, l.burst))
}

// Len returns how many keys the limiter remembers.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// bucket returns key's bucket, made full when new. l.mu is held.
func (l *Limiter) bucket(key string, now time.Time) *rate.Limiter {
	if now.Sub(l.swept) > time.Minute || len(l.m) >= maxBuckets {
		l.sweep(now)
	}
	b, ok := l.m[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(l.rate), l.burst)}
		l.m[key] = b
	}
	b.seen = now
	return b.lim
}

// sweep drops buckets idle long enough to be full again (a bucket in debt
// is idle for its debt longer first); if an attacker still fills the map,
// it starts over rather than grow without bound.
func (l *Limiter) sweep(now time.Time) {
	idle := time.Duration(2*float64(l.burst)/l.rate*float64(time.Second)) + time.Second
	for k, b := range l.m {
		if now.Sub(b.seen) > idle {
			delete(l.m, k)
		}
	}
	if len(l.m) >= maxBuckets {
		l.m = make(map[string]*bucket)
	}
	l.swept = now
}
