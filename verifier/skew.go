package verifier

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// skewWatch measures how far this process's clock is from the authority's,
// from the Date header of every answer the authorities send (the feed's
// position reports among them, so the measure is seconds old at most).
// Beyond the leeway every token looks expired or not yet valid, so it says
// so at Warn and in State, once per crossing.
type skewWatch struct {
	now func() time.Time
	log *slog.Logger
	// leeway is the verifier's leeway; nil until the verifier exists.
	leeway atomic.Pointer[func() time.Duration]
	// skew is the authority's clock minus this one, in nanoseconds: the
	// smallest offset the Date header and the request's timing allow, so 0
	// when within a second or so; measured tells whether any answer had one.
	skew     atomic.Int64
	measured atomic.Bool
	mu       sync.Mutex // serializes the crossing check and its log line
	over     bool
}

// client returns a copy of c (nil: a client on base) whose answers are
// measured.
func (s *skewWatch) client(c *http.Client, base http.RoundTripper) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	if cp.Transport != nil {
		base = cp.Transport
	}
	cp.Transport = &skewTransport{base: base, s: s}
	return &cp
}

type skewTransport struct {
	base http.RoundTripper
	s    *skewWatch
}

func (t *skewTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	sent := t.s.now()
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		if d, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
			t.s.observe(d, sent, t.s.now())
		}
	}
	return resp, err
}

// observe takes an answer dated date (to the second, by the authority's
// clock) to a request sent at sent and answered at recv (by this clock).
// The authority's clock read date..date+1s at some moment between sent and
// recv, so its offset lies in (date-recv, date+1s-sent).
func (s *skewWatch) observe(date, sent, recv time.Time) {
	lo, hi := date.Sub(recv), date.Add(time.Second).Sub(sent)
	var skew time.Duration
	switch {
	case lo > 0:
		skew = lo
	case hi < 0:
		skew = hi
	}
	s.skew.Store(int64(skew))
	s.measured.Store(true)
	s.check()
}

// Skew returns the authority's clock minus this one (0 until measured or
// when within the measure's second of uncertainty).
func (s *skewWatch) Skew() time.Duration { return time.Duration(s.skew.Load()) }

// exceeds returns the leeway and whether the skew is larger.
func (s *skewWatch) exceeds() (time.Duration, bool) {
	lf := s.leeway.Load()
	if lf == nil || !s.measured.Load() {
		return 0, false
	}
	l := (*lf)()
	sk := s.Skew()
	return l, sk > l || -sk > l
}

// check logs a crossing of the leeway, either way.
func (s *skewWatch) check() {
	l, over := s.exceeds()
	s.mu.Lock()
	defer s.mu.Unlock()
	if over == s.over {
		return
	}
	s.over = over
	if over {
		s.log.Warn("this clock differs from the authority's by more than the leeway: tokens will be refused as expired or not yet valid; synchronise the clock (NTP)",
			"skew", s.Skew().Round(time.Millisecond), "leeway", l)
		return
	}
	s.log.Info("this clock agrees with the authority's again", "skew", s.Skew().Round(time.Millisecond), "leeway", l)
}

// reason is why the skew makes the verifier not ready, or "".
func (s *skewWatch) reason() string {
	l, over := s.exceeds()
	if !over {
		return ""
	}
	return "clock differs from the authority's by " + s.Skew().Round(time.Second).String() + ", more than the leeway " + l.String()
}
