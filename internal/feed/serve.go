package feed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/tegata-dev/tegata/internal/httperr"
)

var (
	errReplaced = errors.New("feed: the log was replaced")
	errStopped  = errors.New("feed: hub stopped")
	// errBehind: the ring no longer holds the frames after the connection's
	// position (a burst larger than the ring); it catches up from the
	// Source again.
	errBehind = errors.New("feed: connection fell behind the ring")
	// errSource wraps the Source's errors, which the operator should see.
	errSource = errors.New("feed: reading the log")
)

// liveBatch is how many frames a connection copies from the ring at once.
const liveBatch = 256

// ServeHTTP serves the feed (GET only). It checks no credentials: wrap it
// in the authority's authentication. It waits for Run to have started, and
// sets its own write deadlines, so the server's WriteTimeout does not cut
// the stream.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		httperr.Write(w, http.StatusMethodNotAllowed, httperr.InvalidRequest, "the feed is read with GET")
		return
	}
	after, err := parsePosition(r)
	if err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.InvalidRequest, err.Error())
		return
	}
	f, epoch, named, err := parseFollower(r.Header.Get(headerFollower))
	if err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.InvalidRequest, err.Error())
		return
	}
	select {
	case <-h.ready:
	case <-h.done:
	case <-r.Context().Done():
		return
	}
	if h.isStopped() {
		httperr.Write(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the feed is shutting down")
		return
	}
	hdr := w.Header()
	if named {
		token, err := h.follow(f, r.Header.Get(headerToken), requesterOf(r.Context()), epoch, after)
		if err != nil {
			followError(w, err)
			return
		}
		defer h.fl.disconnected(f.ID)
		hdr.Set(headerToken, token)
	}
	hdr.Set(headerEpoch, h.epoch)
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	c := &conn{hub: h, rc: http.NewResponseController(w), bw: bufio.NewWriterSize(w, 32<<10),
		batch: r.URL.Query().Get(formatParam) == format2}
	if !c.batch {
		h.format1.Add(1)
		defer h.format1.Add(-1)
	}
	c.startWrite()
	if err := c.rc.Flush(); err != nil {
		return
	}
	err = c.serve(r.Context(), after)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		h.log.Info("feed: dropped a slow connection", "remote", r.RemoteAddr, "pos", c.pos, "err", err)
	case errors.Is(err, errSource) && r.Context().Err() == nil:
		h.log.Warn("feed: connection ended", "remote", r.RemoteAddr, "pos", c.pos, "err", err)
	default:
		h.log.Debug("feed: connection ended", "remote", r.RemoteAddr, "after", after, "pos", c.pos, "err", err)
	}
}

// follow registers a named follower's stream and returns its report
// token. A position in another log (another epoch) says nothing about this
// one: the follower counts as having nothing until it reports again.
func (h *Hub) follow(f Follower, token string, q Requester, epoch string, after int64) (string, error) {
	if epoch != h.epoch {
		after = 0
	}
	head := h.Head()
	// As in report: no record names a position beyond what this node read.
	return h.fl.connected(f, token, q, min(after, head), head, h.cfg.Now())
}

// followError answers a stream or report the registry refused.
func followError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errClaimed):
		httperr.Write(w, http.StatusConflict, codeIDTaken, err.Error())
	case errors.Is(err, errUnknown):
		httperr.Write(w, http.StatusConflict, codeUnknown, err.Error())
	case errors.Is(err, errKeyCap), errors.Is(err, errAddrCap):
		w.Header().Set("Retry-After", "5")
		httperr.Write(w, http.StatusTooManyRequests, codeTooMany, err.Error())
	default:
		httperr.Write(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
	}
}

func (h *Hub) isStopped() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.stopped
}

// parsePosition reads the client's position: Last-Event-ID, else after.
func parsePosition(r *http.Request) (int64, error) {
	name, s := "Last-Event-ID", r.Header.Get("Last-Event-ID")
	if s == "" {
		name, s = "after", r.URL.Query().Get("after")
	}
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s must be a non-negative integer", name)
	}
	return n, nil
}

// conn streams the feed to one client.
type conn struct {
	hub *Hub
	rc  *http.ResponseController
	bw  *bufio.Writer
	pos int64  // every live entry <= pos has been written
	gen uint64 // the hub's log generation when the connection began
	// floor is the Source's head when the connection opened. No heartbeat
	// may claim a position below it: the hub's own head can lag the Source
	// by one wake-up, and a client told "you are current" at the hub's
	// head would report ready without entries already acknowledged.
	floor int64
	// batch: the client reads format 2, several entries per event.
	batch  bool
	buf    []byte
	frames []frame // catch-up scratch
	// run holds the entries of the revocations event being written, whose
	// lines take runBytes.
	run      []frame
	runBytes int
}

func (c *conn) serve(ctx context.Context, after int64) error {
	var v view
	c.hub.look(0, &v, 0)
	c.pos, c.gen = after, v.gen
	head, err := c.hub.src.Head(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errSource, err)
	}
	c.floor = head
	if head > v.head {
		c.hub.kick() // read the new entries now, not at the next tick
	}
	if err := c.resetIfAhead(head); err != nil {
		return err
	}
	for {
		if err := c.catchUp(ctx); err != nil {
			return err
		}
		if err := c.live(ctx); !errors.Is(err, errBehind) {
			return err
		}
	}
}

// check says whether the connection can go on reading the hub.
func (c *conn) check(v *view) error {
	switch {
	case v.stopped:
		return errStopped
	case v.gen != c.gen:
		return errReplaced
	}
	return nil
}

// resetIfAhead tells a client positioned beyond the log's head to start
// over: it followed another log.
func (c *conn) resetIfAhead(head int64) error {
	if c.pos <= head {
		return nil
	}
	c.pos = 0
	c.startWrite()
	c.write(appendReset(c.buf[:0], head))
	return c.flush()
}

// catchUp reads the Source in batches until the connection's position is
// covered by the hub's ring.
func (c *conn) catchUp(ctx context.Context) error {
	var v view
	batch := c.hub.cfg.BatchSize
	for {
		c.hub.look(c.pos, &v, 0)
		if err := c.check(&v); err != nil {
			return err
		}
		if c.pos >= v.base {
			return nil
		}
		srcHead, err := c.hub.src.Head(ctx)
		if err != nil {
			return fmt.Errorf("%w: %w", errSource, err)
		}
		entries, err := c.hub.src.EntriesAfter(ctx, c.pos, batch)
		if err != nil {
			return fmt.Errorf("%w: %w", errSource, err)
		}
		c.startWrite()
		c.frames = c.frames[:0]
		var lines arena
		for _, e := range entries {
			f, err := newFrame(e, !c.batch, &lines)
			if err != nil {
				return err
			}
			c.frames = append(c.frames, f)
		}
		c.writeFrames(c.frames)
		if len(entries) < batch {
			c.pos = max(c.pos, srcHead)
		}
		if err := c.flush(); err != nil {
			return err
		}
	}
}

// live follows the hub's ring, with a heartbeat right after joining and on
// every hub tick. It returns errBehind when the ring has moved past the
// connection's position.
func (c *conn) live(ctx context.Context) error {
	var v view
	var sentBeat uint64
	first := true
	for {
		c.hub.look(c.pos, &v, liveBatch)
		if err := c.check(&v); err != nil {
			return err
		}
		if c.pos < v.base {
			return errBehind
		}
		wrote := c.writeFrames(v.frames)
		caughtUp := len(v.frames) < liveBatch
		if caughtUp {
			c.pos = max(c.pos, v.head)
			if c.pos >= c.floor && (first || v.beat != sentBeat) {
				c.writeHeartbeat(wrote)
				first, sentBeat, wrote = false, v.beat, true
			}
		}
		if wrote {
			if err := c.flush(); err != nil {
				return err
			}
		}
		if !caughtUp {
			continue
		}
		select {
		case <-v.changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writeFrames writes the frames after the connection's position, leaving
// out those expired, and reports whether it wrote anything. In format 2,
// consecutive entries share revocations events.
func (c *conn) writeFrames(frames []frame) bool {
	if len(frames) == 0 {
		return false
	}
	now := c.hub.cfg.Now()
	wrote := false
	for _, f := range frames {
		if f.entry.Seq <= c.pos {
			continue
		}
		if c.hub.live(f.entry, now) {
			if !wrote {
				c.startWrite()
				wrote = true
			}
			c.writeFrame(f)
		}
		c.pos = f.entry.Seq
	}
	c.endBatch()
	return wrote
}

// writeFrame writes one entry: into the pending revocations event (format
// 2), or as a revoke event of its own.
func (c *conn) writeFrame(f frame) {
	if c.batch && f.line != nil {
		if len(c.run) == maxBatchEntries || c.runBytes+len(f.line) > maxBatchBytes {
			c.endBatch()
		}
		c.run, c.runBytes = append(c.run, f), c.runBytes+len(f.line)
		return
	}
	c.endBatch()
	if f.event == nil {
		// Encoded for format 2 only (no format 1 connection was open).
		ev, err := appendRevoke(c.buf[:0], f.entry)
		if err != nil {
			c.hub.log.Error("feed: skipping an entry", "seq", f.entry.Seq, "err", err)
			return
		}
		c.buf, f.event = ev, ev
	}
	c.write(f.event)
}

// endBatch writes the pending revocations event, if any: its id is the
// seq of its last entry.
func (c *conn) endBatch() {
	if len(c.run) == 0 {
		return
	}
	c.buf = append(c.buf[:0], "id: "...)
	c.buf = strconv.AppendInt(c.buf, c.run[len(c.run)-1].entry.Seq, 10)
	c.buf = append(c.buf, "\nevent: "+EventRevocations+"\n"...)
	c.write(c.buf)
	for _, f := range c.run {
		c.write(f.line)
	}
	c.write(blankLine)
	clear(c.run)
	c.run, c.runBytes = c.run[:0], 0
}

var blankLine = []byte("\n")

func (c *conn) writeHeartbeat(started bool) {
	if !started {
		c.startWrite()
	}
	c.buf = appendHeartbeat(c.buf[:0], c.pos, c.hub.cfg.Now(), c.hub.epochJSON)
	c.write(c.buf)
}

// startWrite arms the write deadline for the writes up to the next flush,
// so that a client that stopped reading cannot hold the connection forever.
// The deadline is I/O, not logic: it uses the wall clock.
func (c *conn) startWrite() {
	// Writers that cannot set deadlines (ErrNotSupported) still work; they
	// lose only the stall protection.
	_ = c.rc.SetWriteDeadline(time.Now().Add(c.hub.cfg.WriteTimeout))
}

// write buffers b; an error surfaces at flush, where bufio keeps it.
func (c *conn) write(b []byte) {
	_, _ = c.bw.Write(b)
}

func (c *conn) flush() error {
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("feed: write: %w", err)
	}
	if err := c.rc.Flush(); err != nil {
		return fmt.Errorf("feed: flush: %w", err)
	}
	return nil
}
