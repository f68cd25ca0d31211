package feed

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestApplyLeavesOutRepeats: the entries of an event at or below the
// position, or below an entry before them, are left out, in place, and the
// rest keep their order; the position is the last applied.
func TestApplyLeavesOutRepeats(t *testing.T) {
	tests := []struct {
		name      string
		pos       int64
		seqs      []int64
		want      []int64
		wantAfter int64
	}{
		{"in order", 3, []int64{4, 5, 6}, []int64{4, 5, 6}, 6},
		{"repeats first", 5, []int64{4, 5, 6, 7}, []int64{6, 7}, 7},
		{"out of order inside", 3, []int64{5, 4, 6, 2, 7}, []int64{5, 6, 7}, 7},
		{"all repeats", 9, []int64{8, 9}, nil, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int64
			c := &Client{ApplyMany: func(es []revocation.Entry) (int, error) {
				for _, e := range es {
					got = append(got, e.Seq)
				}
				return len(es), nil
			}}
			es := make([]revocation.Entry, len(tt.seqs))
			for i, seq := range tt.seqs {
				es[i] = revocation.Entry{Seq: seq, Kind: revocation.KindSubject, Subject: fmt.Sprint("s", seq)}
			}
			pos, err := c.follower().apply(es, tt.pos)
			if err != nil || pos != tt.wantAfter || !slices.Equal(got, tt.want) {
				t.Fatalf("apply(%v after %d) applied %v to %d, %v; want %v to %d", tt.seqs, tt.pos, got, pos, err, tt.want, tt.wantAfter)
			}
		})
	}
}

// TestIdleTimeoutDefault: a named client leaves a silent stream after
// three quarters of its bound, after its renewals (every half) have had
// a quarter of the bound to be answered; an unnamed one after 15s.
func TestIdleTimeoutDefault(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		c    *Client
		want time.Duration
	}{
		{"unnamed", &Client{}, 15 * time.Second},
		{"named, 30s bound", &Client{Follower: &Follower{StaleAfter: 30 * time.Second}}, 22500 * time.Millisecond},
		{"named, 1s bound", &Client{Follower: &Follower{StaleAfter: time.Second}}, 2 * time.Second},
		{"set", &Client{IdleTimeout: time.Second, Follower: &Follower{StaleAfter: 30 * time.Second}}, time.Second},
	} {
		if got := tt.c.follower().idle; got != tt.want {
			t.Errorf("%s: idle timeout %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestRefusalsThatReconnect: a node's unknown_verifier or conflict (another
// epoch) ends the stream only once no report has been taken for the
// renewals' interval (1/RenewShare of the bound), to the nanosecond;
// verifier_id_taken renames the client and ends it at once; any other
// refusal leaves the stream be.
func TestRefusalsThatReconnect(t *testing.T) {
	t.Parallel()
	const bound = 30 * time.Second
	answered := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	renewal := bound / RenewShare
	for _, tt := range []struct {
		name      string
		code      string
		since     time.Duration // from the last report taken
		reconnect bool
		renamed   bool
	}{
		{"unknown within a renewal's interval", codeUnknown, renewal - time.Nanosecond, false, false},
		{"unknown a renewal's interval on", codeUnknown, renewal, true, false},
		{"another epoch within a renewal's interval", codeConflict, renewal - time.Nanosecond, false, false},
		{"another epoch a renewal's interval on", codeConflict, renewal, true, false},
		{"id taken at once", codeIDTaken, 0, true, true},
		{"another code", "some_other_code", bound, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := testtime.NewClock(answered.Add(tt.since))
			c := &Client{Clock: clk, Logger: slog.New(slog.DiscardHandler), Follower: &Follower{ID: "v1", StaleAfter: bound}}
			c.st.ID = "v1"
			var ended error
			c.endStream = func(cause error) { ended = cause }
			c.follower().refused(tt.code, answered)
			if got := ended != nil; got != tt.reconnect {
				t.Errorf("refused(%q) %v after the last report taken: reconnect %v, want %v", tt.code, tt.since, got, tt.reconnect)
			}
			if got := c.State().ID != "v1"; got != tt.renamed {
				t.Errorf("refused(%q): id %q, renamed %v, want %v", tt.code, c.State().ID, got, tt.renamed)
			}
		})
	}
}

// TestRetryAfterIsCapped: a 429's Retry-After holds the next stream back
// as long as it says, in whole seconds, up to maxRetryAfter (a proxy's
// hour is cut to the cap), plus up to half again of jitter; any other
// form, or none, leaves the backoff alone.
func TestRetryAfterIsCapped(t *testing.T) {
	t.Parallel()
	s := (&Client{}).follower() // backoff after one failure: at most 100 ms
	for _, tt := range []struct {
		name, header string
		want         time.Duration // the Retry-After wait; 0: the backoff's
	}{
		{"none", "", 0},
		{"seconds", "5", 5 * time.Second},
		{"at the cap", "30", maxRetryAfter},
		{"past the cap", "31", maxRetryAfter},
		{"a proxy's hour", "3600", maxRetryAfter},
		{"more seconds than a Duration holds", "9223372036854775807", maxRetryAfter},
		{"more seconds than an int holds", "99999999999999999999", maxRetryAfter},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"a fraction", "1.5", 0},
		{"a date", "Wed, 21 Oct 2026 07:28:00 GMT", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: http.StatusTooManyRequests, Status: "429 Too Many Requests",
				Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"error":"too_many_streams"}`))}
			if tt.header != "" {
				resp.Header.Set("Retry-After", tt.header)
			}
			err := checkResponse(resp)
			if !errors.Is(err, ErrStatus) {
				t.Fatalf("checkResponse(429, Retry-After %q) = %v, want an error wrapping ErrStatus", tt.header, err)
			}
			lo, hi := tt.want, tt.want*3/2
			if tt.want == 0 {
				lo, hi = 50*time.Millisecond, 100*time.Millisecond
			}
			for range 100 {
				if got := s.wait(1, err); got < lo || got > hi {
					t.Fatalf("wait after a 429 with Retry-After %q = %v, want %v to %v", tt.header, got, lo, hi)
				}
			}
		})
	}
}

// TestHostileHeadHint: a node whose events say a head far beyond their
// entries (2^62, then the largest int64) gets the consumer told of at most
// maxExpect entries at a time, which a revocation set makes room for (it
// would try to make room for 2^55 subjects a shard, and fail, if told the
// head's worth); the entries themselves are applied as ever.
func TestHostileHeadHint(t *testing.T) {
	set := revocation.NewSet(0)
	var told []int
	s := (&Client{ApplyMany: set.ApplyMany, Logger: quietLog(), Grow: func(k revocation.Kind, n int) {
		told = append(told, n)
		if n > maxExpect {
			t.Errorf("Grow(%s, %d), want at most %d", k, n, maxExpect)
			return // not on to the set, which would try to allocate as much
		}
		set.Grow(k, n)
	}}).follower()
	exp := time.Now().Add(time.Hour).UnixMicro()
	for i, head := range []int64{1 << 62, math.MaxInt64} {
		seq := 2*i + 1
		data := fmt.Sprintf("%d subject %d %d 1 alice-%d\n+1 bob-%d", seq, exp-1, exp, seq, seq)
		if _, err := s.handle(Event{ID: fmt.Sprint(seq + 1), Type: EventRevocations, Data: []byte(data), Head: head}); err != nil {
			t.Fatalf("event %d with head %d: %v", seq, head, err)
		}
	}
	if len(told) == 0 {
		t.Errorf("Grow never called, want it told of the entries the heads say follow")
	}
	if set.Len() != 4 {
		t.Errorf("the set holds %d entries, want the 4 sent", set.Len())
	}
}
