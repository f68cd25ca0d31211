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

// commit commits t and, if it appended, wakes every subscriber. Before
// the COMMIT it notes the head t appended up to, so that the notice of that
// append, which may reach this process before COMMIT returns here, wakes
// nobody (see Notified). They are woken even if COMMIT fails: its outcome
// is then unknown, and a wake-up costs only a read.
func (s *Store) commit(t *tx) error {
	if !t.appended {
		return t.Commit()
	}
	for cur := s.woken.Load(); t.head > cur && !s.woken.CompareAndSwap(cur, t.head); cur = s.woken.Load() {
	}
	err := t.Commit()
	s.hub.wake()
	return err
}

// Notified wakes every subscriber for a notice that the log's head reached
// head, unless this process wakes them after committing an append of its
// own up to head or beyond: they then read the log past head anyway, since
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
