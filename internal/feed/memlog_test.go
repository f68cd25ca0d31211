package feed_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// memLog is an in-memory feed.Source: a slice, a mutex and wake channels.
type memLog struct {
	mu      sync.Mutex
	entries []revocation.Entry
	head    int64
	subs    map[chan struct{}]struct{}
	heads   atomic.Int64 // Head calls
	reads   atomic.Int64 // EntriesAfter calls
	down    atomic.Bool  // when set, every read fails
	silent  atomic.Bool  // when set, appends wake nobody (a lost NOTIFY)
	// heard and asked are what Heard returns (feed.HubConfig.Heard);
	// only appendHeard raises them.
	heard, asked atomic.Int64
}

// appendHeard appends n live session entries and, before waking
// subscribers, has Heard return the new head, as asked too when ask.
func (m *memLog) appendHeard(n int, ask bool) {
	head := m.add(n, live, "")
	m.heard.Store(head)
	if ask {
		m.asked.Store(head)
	}
	m.wake()
}

// Heard is feed.HubConfig.Heard.
func (m *memLog) Heard() (head, asked int64) { return m.heard.Load(), m.asked.Load() }

var errDown = errors.New("memlog: down")

func newMemLog() *memLog {
	return &memLog{subs: make(map[chan struct{}]struct{})}
}

// appendN appends n session entries expiring at exp and wakes subscribers.
func (m *memLog) appendN(n int, exp time.Time) {
	m.appendPadded(n, exp, "")
}

// appendPadded appends entries whose session ids end with pad, to make
// them large.
func (m *memLog) appendPadded(n int, exp time.Time, pad string) {
	m.add(n, exp, pad)
	m.wake()
}

// add appends as appendPadded does, wakes nobody and returns the new head.
func (m *memLog) add(n int, exp time.Time, pad string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range n {
		m.head++
		m.entries = append(m.entries, revocation.Entry{
			Seq: m.head, Kind: revocation.KindSession, Session: sidOf(m.head) + pad,
			CreatedAt: exp.Add(-time.Hour), ExpiresAt: exp,
		})
	}
	return m.head
}

// appendSubject appends a subject entry and wakes subscribers.
func (m *memLog) appendSubject(sub string, exp time.Time) {
	m.mu.Lock()
	m.head++
	m.entries = append(m.entries, revocation.Entry{
		Seq: m.head, Kind: revocation.KindSubject, Subject: sub, Generation: 1,
		CreatedAt: exp.Add(-time.Hour), ExpiresAt: exp,
	})
	m.mu.Unlock()
	m.wake()
}

// appendSubjectQuiet appends a live subject entry and wakes nobody.
func (m *memLog) appendSubjectQuiet(sub string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.head++
	m.entries = append(m.entries, revocation.Entry{
		Seq: m.head, Kind: revocation.KindSubject, Subject: sub, Generation: 1,
		CreatedAt: live.Add(-time.Hour), ExpiresAt: live,
	})
}

// replace swaps the log for a new one of n entries, as a restore would.
func (m *memLog) replace(n int, exp time.Time) {
	m.mu.Lock()
	m.entries, m.head = nil, 0
	m.mu.Unlock()
	m.appendN(n, exp)
}

// skip moves the head past n seqs whose entries were pruned.
func (m *memLog) skip(n int) {
	m.mu.Lock()
	m.head += int64(n)
	m.mu.Unlock()
	m.wake()
}

func (m *memLog) wake() {
	if m.silent.Load() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (m *memLog) EntriesAfter(_ context.Context, after int64, limit int) ([]revocation.Entry, error) {
	m.reads.Add(1)
	if m.down.Load() {
		return nil, errDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.entries), func(i int) bool { return m.entries[i].Seq > after })
	j := min(i+limit, len(m.entries))
	return append([]revocation.Entry(nil), m.entries[i:j]...), nil
}

func (m *memLog) Head(context.Context) (int64, error) {
	m.heads.Add(1)
	if m.down.Load() {
		return 0, errDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.head, nil
}

func (m *memLog) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	m.subs[ch] = struct{}{}
	m.mu.Unlock()
	return ch, func() {
		m.mu.Lock()
		delete(m.subs, ch)
		m.mu.Unlock()
	}
}
