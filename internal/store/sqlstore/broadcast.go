package sqlstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/tegata-dev/tegata/internal/store"
)

var _ store.Broadcaster = (*Store)(nil)

// listenBuffer is how many messages a listener may fall behind before it
// loses some (and then receives "").
const listenBuffer = 256

// listeners delivers broadcast messages in-process. A listener that does
// not keep up loses messages and is sent "" as soon as it has room again,
// which store.Broadcaster defines as "messages may have been lost".
type listeners struct {
	mu   sync.Mutex
	subs map[*listener]struct{}
}

type listener struct {
	ch   chan string
	lost bool // guarded by listeners.mu
}

func (l *listeners) listen() (<-chan string, func()) {
	sub := &listener{ch: make(chan string, listenBuffer)}
	l.mu.Lock()
	if l.subs == nil {
		l.subs = make(map[*listener]struct{})
	}
	l.subs[sub] = struct{}{}
	l.mu.Unlock()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs, sub)
			l.mu.Unlock()
		})
	}
}

func (l *listeners) deliver(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for sub := range l.subs {
		if sub.lost {
			select {
			case sub.ch <- "":
				sub.lost = false
			default:
				continue
			}
		}
		select {
		case sub.ch <- msg:
		default:
			sub.lost = true
		}
	}
}

// Listen implements store.Broadcaster. The channel is never closed; after
// stop it receives nothing more.
func (s *Store) Listen() (<-chan string, func()) { return s.listeners.listen() }

// Deliver hands msg to every listener of this process. Backends that
// broadcast through their database call it for each message they receive,
// and with "" after reconnecting.
func (s *Store) Deliver(msg string) { s.listeners.deliver(msg) }

// Broadcast implements store.Broadcaster within this process; backends
// shared by several processes replace it.
func (s *Store) Broadcast(_ context.Context, msg string) error {
	if len(msg) > store.MaxBroadcast {
		return fmt.Errorf("sqlstore: broadcast: message of %d bytes (at most %d)", len(msg), store.MaxBroadcast)
	}
	s.listeners.deliver(msg)
	return nil
}
