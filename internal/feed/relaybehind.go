package feed

import (
	"net/http"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
)

// relayAheadWait is how long a relay holds a stream that asks for entries
// after a position beyond the relay's head before serving it: the relay
// trails its node (by a read and a write, more while a bulk arrives), and
// a follower comes from further ahead when it followed a node meanwhile
// (it lists the relay first and the nodes after, and failed over). Served
// at once, such a stream is told its log was replaced (reset), which
// empties a verifier's set and keys: it refuses every token until it has
// replayed the log. A follower still ahead after the wait did follow
// another log, and gets its reset then.
const relayAheadWait = 5 * time.Second

// awaitAhead waits until the relay's log has reached the stream's
// position, for at most relayAheadWait, the request's end, or the log
// being replaced.
func (r *Relay) awaitAhead(req *http.Request) {
	after, err := parsePosition(req)
	if err != nil {
		return // the hub answers it
	}
	r.mu.Lock()
	l := r.rlog
	r.mu.Unlock()
	wake, stop := l.Subscribe()
	defer stop()
	var expired <-chan time.Time
	for {
		if head, _ := l.Head(req.Context()); head >= after {
			return
		}
		if expired == nil {
			t, c := clock.NewTimer(r.cfg.Clock, relayAheadWait)
			defer t.Stop()
			expired = c
		}
		select {
		case <-wake:
		case <-expired:
			return
		case <-req.Context().Done():
			return
		}
	}
}
