package feed

import (
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// The hub writes a new batch to the streams that wait at its start itself,
// without waking their goroutines. A stream that is caught up (at the
// hub's head, its first heartbeat sent) and took its connection over from
// net/http parks (Hub.park) instead of waiting on the hub's changed
// channel: it waits only for what the hub's fan-out cannot do for it (a
// heartbeat falling due, the follower's last report stream ending, the end
// of its request) and for its own wake channel. When the tailer publishes
// a batch that every such stream writes as it is (its shared segment, up
// to 64 KiB: no entry in it expired, and none skipped after its last, so
// that no heartbeat must follow it), it takes the parked
// streams, and fan-out workers (about GOMAXPROCS of them) write the
// segment to each with one non-blocking writev, the ask of a confirmation
// waiting for it in the same write, and park the stream again at the new
// head. Waking each stream's goroutine cost a node about a sixth of its
// CPU per revocation: the goroutine's wake-up and scheduling, its look at
// the hub under the hub's lock, its select over four channels.
//
// A stream's goroutine is woken (its wake channel) whenever the fan-out
// does not write to it all it is due: something else is due (a heartbeat,
// a nodes event), its write found the socket's buffer full (the rest of
// the chunk is kept for the goroutine to write, with the write deadline),
// the write failed (the goroutine ends the stream), or the goroutine held
// its stream at that instant. Every other change of the hub (an ask for a
// position already read, the nodes, a replaced log, the hub stopping)
// wakes every parked stream, as it wakes the others by closing changed.
//
// conn.own is held by whoever works on a stream: its goroutine, from its
// start but for its waits (parked or not), or a fan-out worker while it
// writes to it (TryLock: a stream its goroutine holds is woken instead,
// never waited for). The tailer waits for a fan-out to end before it reads
// the log again: a fan-out takes as long as its writes (some 10 µs of a
// core each on the development VM), and the entries appended meanwhile go
// in the next batch, one write per stream for all of them.

// Where a conn is, in Hub.parked (conn.parkAt, guarded by Hub.mu).
const (
	notParked = -1 // its goroutine runs, or is about to
	fanning   = -2 // taken by a fan-out, whose workers write to it
)

// maxFanBytes bounds the segments the fan-out writes: a larger one (a
// bulk revocation) is written by each stream's goroutine, which may wait
// for the socket's buffer to drain; a worker would leave most of it to the
// goroutine anyway.
const maxFanBytes = 64 << 10

// fanBatch is how many streams a fan-out worker takes at a time.
const fanBatch = 32

// fanJob is one batch for the parked streams, with what the hub held when
// it was published.
type fanJob struct {
	seg     segment
	last    int64 // the seq of its last entry
	streams []*conn
	beat    uint64
	gen     uint64
	want    int64
	ask     []byte
	nodes   uint64 // the hub's nodesGen; nodesFrame is nil if none
	noNodes bool
	changed chan struct{} // the hub's changed channel after the publish
}

// signal wakes the stream's goroutine, if it waits (else its next wait
// ends at once: a wake-up too many costs it a look at the hub).
func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// park adds c to the parked streams, unless the hub changed since the
// stream's look that returned seen: the stream then looks again.
func (h *Hub) park(c *conn, seen <-chan struct{}) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.changed != seen {
		return false
	}
	c.parkAt = len(h.parked)
	h.parked = append(h.parked, c)
	return true
}

// unpark takes c out of the parked streams, its goroutine woken.
func (h *Hub) unpark(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := c.parkAt; i >= 0 {
		n := len(h.parked) - 1
		last := h.parked[n]
		h.parked[i], last.parkAt = last, i
		h.parked[n] = nil
		h.parked = h.parked[:n]
	}
	c.parkAt = notParked
}

// wakeParkedLocked wakes every parked stream.
func (h *Hub) wakeParkedLocked() {
	for _, c := range h.parked {
		c.parkAt = notParked
		c.signal()
	}
	clear(h.parked)
	h.parked = h.parked[:0]
}

// fanOutLocked hands the parked streams to a fan-out of s, the segment
// just published, when each of them would write it as it is; else it
// wakes them. The caller runs the job (fanOut) once it has unlocked.
func (h *Hub) fanOutLocked(s segment) *fanJob {
	n := len(s.frames)
	if len(h.parked) == 0 {
		return nil
	}
	if n == 0 || s.frames[n-1].entry.Seq != s.to || len(s.data) > maxFanBytes ||
		!s.expires.Add(h.cfg.Grace).After(h.cfg.Clock.Now()) {
		h.wakeParkedLocked()
		return nil
	}
	j := &fanJob{seg: s, last: s.to, streams: h.parked, beat: h.beat, gen: h.gen,
		want: h.want, ask: h.askFrame, nodes: h.nodesGen, noNodes: h.nodesFrame == nil, changed: h.changed}
	for _, c := range j.streams {
		c.parkAt = fanning
	}
	h.parked = h.spare[:0]
	h.spare = nil
	return j
}

// fanOut writes j's segment to its streams, on about GOMAXPROCS workers
// (the caller one of them), and returns once all are written or woken.
func (h *Hub) fanOut(j *fanJob) {
	var next atomic.Int64
	workers := min(runtime.GOMAXPROCS(0), (len(j.streams)+fanBatch-1)/fanBatch)
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(func() { h.fanWork(j, &next) })
	}
	h.fanWork(j, &next)
	wg.Wait()
	clear(j.streams)
	h.mu.Lock()
	if h.spare == nil {
		h.spare = j.streams[:0]
	}
	h.mu.Unlock()
}

// fanWork writes to batches of j's streams until none is left, and parks
// those it wrote to again.
func (h *Hub) fanWork(j *fanJob, next *atomic.Int64) {
	var w fanWriter
	w.init(j)
	wrote := make([]*conn, 0, fanBatch)
	for {
		i := int(next.Add(fanBatch)) - fanBatch
		if i >= len(j.streams) {
			return
		}
		wrote = wrote[:0]
		for _, c := range j.streams[i:min(i+fanBatch, len(j.streams))] {
			if w.send(c) {
				wrote = append(wrote, c)
			} else {
				c.signal()
			}
		}
		h.repark(j, wrote)
		h.fanned.Add(int64(len(wrote)))
	}
}

// repark parks again the streams a fan-out wrote j's segment to, unless
// the hub changed since: they are then woken, as the streams parked were.
// A stream whose goroutine woke meanwhile (a heartbeat due) is not parked
// any more, and stays so.
func (h *Hub) repark(j *fanJob, cs []*conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cs {
		switch {
		case c.parkAt != fanning:
		case h.changed != j.changed:
			c.parkAt = notParked
			c.signal()
		default:
			c.parkAt = len(h.parked)
			h.parked = append(h.parked, c)
		}
	}
}

// fanWriter is a fan-out worker's scratch.
type fanWriter struct {
	j        *fanJob
	sizeLine []byte // the chunk's size line, without and with the ask
	askLine  []byte
	bufs     [4][]byte
	now      nowWriter
}

func (w *fanWriter) init(j *fanJob) {
	w.j = j
	w.sizeLine = appendChunkSize(nil, len(j.seg.data))
	w.askLine = appendChunkSize(nil, len(j.seg.data)+len(j.ask))
}

// send writes the job's segment to c, the ask with it if c is due it, and
// reports whether c is due nothing more: false, its goroutine must be
// woken.
func (w *fanWriter) send(c *conn) bool {
	if !c.own.TryLock() {
		return false
	}
	defer c.own.Unlock()
	j := w.j
	s := c.fan
	if c.quit || c.err != nil || c.pos != j.seg.from || c.gen != j.gen || !s.idle() ||
		c.beatNext != 0 && j.beat >= c.beatNext || !j.noNodes && j.nodes != c.nodesSent {
		return false
	}
	bufs := append(w.bufs[:0], w.sizeLine, j.seg.data)
	ask := c.follower != "" && j.want > c.asked && j.seg.to >= j.want
	if ask {
		bufs = append(w.bufs[:0], w.askLine, j.seg.data, j.ask)
		c.asked = j.want
	}
	bufs = append(bufs, crlf)
	c.pos, c.told = j.seg.to, j.last
	c.begin()
	n, err := w.now.write(s.sc, bufs)
	if err != nil {
		c.fail(err)
		return false
	}
	if s.keepRest(bufs, n) {
		c.hub.fanRests.Add(1)
		return false
	}
	return true
}

// appendChunkSize appends the size line of a chunk of n bytes.
func appendChunkSize(b []byte, n int) []byte {
	return append(strconv.AppendInt(b, int64(n), 16), crlf...)
}
