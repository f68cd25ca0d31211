package sqlstore

import "sync"

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

// wakeAt wakes every subscriber after this process committed an append
// that took the log's head to head.
func (s *Store) wakeAt(head int64) {
	for cur := s.woken.Load(); head > cur && !s.woken.CompareAndSwap(cur, head); cur = s.woken.Load() {
	}
	s.hub.wake()
}

// Notified wakes every subscriber for a notice that the log's head reached
// head, unless this process woke them for head or beyond already after an
// append of its own: they then read the log past head anyway, since
// appends commit in seq order. On Postgres each append is notified to
// every node, the appending one too, and without this its subscribers
// would read the log twice for each of its own commits.
func (s *Store) Notified(head int64) {
	if head <= s.woken.Load() {
		return
	}
	s.hub.wake()
}

// Wake wakes every subscriber. The Store calls it after each commit that
// appended to the log; backends call it when they learn that another
// process may have appended (a Postgres notification, a reconnect).
func (s *Store) Wake() { s.hub.wake() }
