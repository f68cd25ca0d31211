package sqlstore

import (
	"sync"
	"sync/atomic"
)

// hub wakes in-process subscribers. Sends never block: each subscriber has a
// buffer of one, so wake-ups while it is busy coalesce into one, which is
// enough because a wake-up only says "re-read the log after your last seq".
type hub struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func (h *hub) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = make(map[chan struct{}]struct{})
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
		})
	}
	return ch, stop
}

func (h *hub) wake() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Subscribe implements store.Notifier. The channel is never closed; after
// stop it receives nothing more.
func (s *Store) Subscribe() (wake <-chan struct{}, stop func()) {
	return s.hub.subscribe()
}

// commit commits t and, if it appended, wakes every subscriber. Before
// the COMMIT it notes the head t appended up to, so that the notice of that
// append, which may reach this process before COMMIT returns here, wakes
// nobody (see Notified). They are woken even if COMMIT fails: its outcome
// is then unknown, and a wake-up costs only a read.
func (s *Store) commit(t *tx) error {
	if !t.appended {
		return t.Commit()
	}
	raise(&s.woken, t.head)
	err := t.Commit()
	if err == nil {
		s.heardAppend(t.head, t.ask)
	}
	s.hub.wake()
	return err
}

// Notified wakes every subscriber for a notice that the log's head reached
// head (and that a caller waits for its confirmation, when ask), unless
// this process wakes them after committing an append of its own up to
// head or beyond: they then read the log past head anyway, since appends
// commit in seq order. On Postgres each append is notified to every node,
// the appending one too, and without this its subscribers would read the
// log twice for each of its own commits.
func (s *Store) Notified(head int64, ask bool) {
	s.heardAppend(head, ask)
	if head <= s.woken.Load() {
		return
	}
	s.hub.wake()
}

// heardAppend raises what Heard returns for an append committed up to
// head.
func (s *Store) heardAppend(head int64, ask bool) {
	raise(&s.heard, head)
	if ask {
		raise(&s.asked, head)
	}
}

// Heard implements store.Notifier.
func (s *Store) Heard() (head, asked int64) { return s.heard.Load(), s.asked.Load() }

// raise sets v to x if x is higher.
func raise(v *atomic.Int64, x int64) {
	for cur := v.Load(); x > cur && !v.CompareAndSwap(cur, x); cur = v.Load() {
	}
}

// Wake wakes every subscriber. The Store calls it after each commit that
// appended to the log; backends call it when they learn that another
// process may have appended (a Postgres notification, a reconnect).
func (s *Store) Wake() { s.hub.wake() }
