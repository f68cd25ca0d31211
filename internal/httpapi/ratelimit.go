package httpapi

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/tegata-dev/tegata/internal/httpguard"
)

// Limits caps request rates. A zero Rate disables that limit.
type Limits struct {
	// Every limit keeps revocations in buckets of their own (see limitKey):
	// no amount of other calls can make a revocation wait.

	// PerKey limits each API key. Default 2000/s, burst 4000.
	PerKey Limit
	// PerSubject limits session creations per subject and, separately,
	// subject revocations per subject, so one account cannot flood the
	// revocation log. Default 5/s, burst 20.
	PerSubject Limit
	// PerClient limits the public endpoints (refresh; token revocation
	// separately) per client address (an IPv6 client by its /64). Default
	// 20/s, burst 60.
	PerClient Limit
	// AuthFailures limits failed API key attempts per client address: past
	// it, failures are answered 429 and logged at Debug only. It keeps
	// guessing out of the logs, not out of reach: every attempt is still
	// checked, so that a valid key is never refused because someone else
	// guesses from the same address; against 256-bit keys guessing is
	// hopeless anyway. Default 1/s, burst 10.
	AuthFailures Limit
	// FeedStreamsPerKey and FeedStreamsPerAddress cap the feed streams
	// open on one node with one API key and from one client address (each
	// stream holds a goroutine and a write buffer); past them a new stream
	// is refused with 429 too_many_streams. Zero: no cap. Defaults 4096
	// and 64.
	FeedStreamsPerKey, FeedStreamsPerAddress int
	// ConnsPerAddress caps the connections open at once from one client
	// address (an IPv6 client by its /64), TrustedProxies excepted; over it
	// a connection is closed as soon as it is accepted. It bounds what one
	// client can hold idle or trickling. Zero: no cap. Default 256.
	ConnsPerAddress int
	// TrustedProxies are the networks whose X-Forwarded-For is believed
	// for the client address. Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix
}

// Limit is a token bucket: Rate events per second, Burst at once.
type Limit struct {
	Rate  float64
	Burst int
}

// DefaultLimits returns the limits `tegata serve` uses unless told otherwise.
func DefaultLimits() Limits {
	return Limits{PerKey: Limit{2000, 4000}, PerSubject: Limit{5, 20}, PerClient: Limit{20, 60}, AuthFailures: Limit{1, 10},
		FeedStreamsPerKey: 4096, FeedStreamsPerAddress: 64, ConnsPerAddress: 256}
}

// limiter is httpguard's, one event at a time. A nil *limiter limits
// nothing.
type limiter struct{ l *httpguard.Limiter }

func newLimiter(l Limit) *limiter {
	if l.Rate <= 0 {
		return nil
	}
	return &limiter{httpguard.NewLimiter(l.Rate, l.Burst)}
}

// wait returns 0 if the event may happen now, or how long to wait.
func (l *limiter) wait(key string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	return l.l.Wait(key, 1, now)
}

func tooMany(d time.Duration, what string) *apiError {
	secs := int(math.Ceil(d.Seconds()))
	return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Description: "too many requests " + what + "; retry after " + strconv.Itoa(secs) + " s",
		Header:      [2]string{"Retry-After", strconv.Itoa(secs)}}
}

// clientAddr is the client's address under the trusted proxies
// (httpguard.ClientAddr).
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	return httpguard.ClientAddr(r, trusted)
}
