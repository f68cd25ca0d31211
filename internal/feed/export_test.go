package feed

import "github.com/tegata-dev/tegata/internal/revocation"

// ParseLines reads a revocations event's data, for the tests of package
// feed_test.
func ParseLines(data []byte) ([]revocation.Entry, error) { return parseLines(nil, data) }

// Beats returns how many heartbeat ticks the hub has had.
func (h *Hub) Beats() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.beat
}

// FanOutWrites returns how many writes the hub's fan-out made to parked
// streams.
func (h *Hub) FanOutWrites() int64 { return h.fanned.Load() }

// ParkedStreams returns how many streams wait for the hub's fan-out.
func (h *Hub) ParkedStreams() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.parked)
}

// FanOutRests returns how many writes of the fan-out left a rest to the
// stream's goroutine.
func (h *Hub) FanOutRests() int64 { return h.fanRests.Load() }

// Looks returns how many times the hub has looked at its followers'
// records to work out how far they are safe (all of them, or those
// behind).
func (h *Hub) Looks() uint64 { return h.fl.looks.Load() }

// LogSubscribers returns how many wait on the relay's log: its hub, and
// the streams held until the log reaches their position.
func (r *Relay) LogSubscribers() int {
	r.mu.Lock()
	l := r.rlog
	r.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs)
}
