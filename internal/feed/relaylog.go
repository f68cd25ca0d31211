package feed

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// RelayLog is a revocation log held in memory: a relay (relay.go) appends
// to it what its upstream Client applies (ApplyMany, Advance) and serves
// it to its own followers as a Hub's Source. It keeps what a node's log
// holds for the feed: every entry until Grace past its expiry.
//
// Its positions are the upstream log's: an entry keeps its seq, and the
// head is the upstream position the client has reached. Safe for
// concurrent use: one writer (the Client's Run goroutine), any readers.
type RelayLog struct {
	grace time.Duration
	clock clock.Clock

	mu      sync.Mutex
	entries []revocation.Entry // seq order
	head    int64
	// pruneAt is when the next prune is due; entries are pruned at most
	// every pruneEvery, on an append.
	pruneAt time.Time
	subs    map[chan struct{}]struct{}
}

// pruneEvery is the least time between two prunes of a RelayLog: a prune
// copies the live entries, so it is paced rather than run per append.
const pruneEvery = 10 * time.Second

// NewRelayLog returns an empty log that keeps an entry until grace past
// its ExpiresAt on clk (nil: the wall clock).
func NewRelayLog(grace time.Duration, clk clock.Clock) *RelayLog {
	return &RelayLog{grace: grace, clock: clock.Or(clk), subs: make(map[chan struct{}]struct{})}
}

// ApplyMany appends the entries above the head, in seq order, with their
// keys copied (a Client reuses them once ApplyMany returns), and wakes the
// subscribers. It is a Client's ApplyMany: it never refuses an entry.
func (l *RelayLog) ApplyMany(es []revocation.Entry) (int, error) {
	now := l.clock.Now()
	l.mu.Lock()
	added := false
	for _, e := range es {
		if e.Seq <= l.head {
			continue
		}
		e.Session, e.Subject = strings.Clone(e.Session), strings.Clone(e.Subject)
		l.entries = append(l.entries, e)
		l.head, added = e.Seq, true
	}
	if added && !now.Before(l.pruneAt) {
		l.pruneLocked(now)
	}
	l.mu.Unlock()
	if added {
		l.wake()
	}
	return len(es), nil
}

// Advance moves the head up to pos without entries: the upstream said it
// has sent every live entry up to pos (a heartbeat), and those in between
// expired or were pruned.
func (l *RelayLog) Advance(pos int64) {
	now := l.clock.Now()
	l.mu.Lock()
	moved := pos > l.head
	if moved {
		l.head = pos
	}
	if moved && !now.Before(l.pruneAt) {
		// A quiet log prunes too: heartbeats come when appends do not.
		l.pruneLocked(now)
	}
	l.mu.Unlock()
	if moved {
		l.wake()
	}
}

// Clear empties the log and sets its head back to 0: the upstream serves
// another log, which the client follows from the start.
func (l *RelayLog) Clear() {
	l.mu.Lock()
	l.entries, l.head = nil, 0
	l.mu.Unlock()
	l.wake()
}

// pruneLocked drops the entries past Grace beyond their expiry. l.mu is
// held.
func (l *RelayLog) pruneLocked(now time.Time) {
	l.pruneAt = now.Add(pruneEvery)
	kept := l.entries[:0]
	for _, e := range l.entries {
		if e.ExpiresAt.Add(l.grace).After(now) {
			kept = append(kept, e)
		}
	}
	clear(l.entries[len(kept):]) // keep no keys alive
	l.entries = kept
	if len(kept) < cap(kept)/4 {
		// Give back the room of what expired (a bulk's, say): a slice
		// pruned in place keeps its largest size for good.
		l.entries = append(make([]revocation.Entry, 0, 2*len(kept)), kept...)
	}
}

// Len returns how many entries the log holds.
func (l *RelayLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// EntriesAfter is Source.EntriesAfter.
func (l *RelayLog) EntriesAfter(_ context.Context, after int64, limit int) ([]revocation.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].Seq > after })
	j := min(i+max(limit, 0), len(l.entries))
	return append([]revocation.Entry(nil), l.entries[i:j]...), nil
}

// Head is Source.Head.
func (l *RelayLog) Head(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head, nil
}

// Subscribe is Source.Subscribe.
func (l *RelayLog) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	l.subs[ch] = struct{}{}
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		delete(l.subs, ch)
		l.mu.Unlock()
	}
}

func (l *RelayLog) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ch := range l.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
