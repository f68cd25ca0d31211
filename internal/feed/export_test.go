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
