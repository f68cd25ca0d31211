package bench

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// streamEnded is the message feed.Client logs each time a stream ends,
// before it connects again; a refused connection is logged at Error
// instead.
const streamEnded = "feed: stream ended"

// streamEnds is the slog handler of the in-process verifiers' feed
// clients: it counts their streams' ends, each followed by a reconnect,
// keeps the last one's error, and drops every record. Safe for concurrent
// use.
type streamEnds struct {
	n    atomic.Int64
	mu   sync.Mutex
	last string // the err attribute of the last end counted
}

func (h *streamEnds) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *streamEnds) Handle(_ context.Context, r slog.Record) error {
	if r.Message != streamEnded && r.Level < slog.LevelError {
		return nil
	}
	h.n.Add(1)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "err" {
			return true
		}
		h.mu.Lock()
		h.last = a.Value.String()
		h.mu.Unlock()
		return false
	})
	return nil
}

func (h *streamEnds) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *streamEnds) WithGroup(string) slog.Handler      { return h }

// since returns the ends counted after mark (an earlier count), and the
// last one's error ("" when none).
func (h *streamEnds) since(mark int64) (int64, string) {
	n := h.n.Load() - mark
	if n == 0 {
		return 0, ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return n, h.last
}
