package feed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
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
//
// A stream that took its connection over from net/http, served with a
// detach hook (WithDetachHook), goes on on a goroutine of its own and
// ServeHTTP returns at once: the handler's goroutine, whose stack grew
// through every handler around the hub, and net/http's buffers and request
// for the connection, tens of KiB a stream, are freed instead of being
// held for the hours the stream lives, and the next connections reuse
// them; a panic there ends that stream alone and is logged, as net/http
// does with a handler's. Any other stream is served before ServeHTTP
// returns.
//
// What a stream does only once (checking the request, registering its
// follower, logging its end) is done in functions of their own, so that
// the frames a stream keeps on its goroutine's stack are small: a
// goroutine whose stack outgrows its first size costs a copy of it.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, after, ok := h.open(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if raw, ok := c.out.(*rawStream); ok {
		if detach, ok := ctx.Value(detachHookKey{}).(func()); ok {
			detach()
			go h.serveRaw(ctx, c, raw, after, r.RemoteAddr)
			return
		}
		h.serveRaw(ctx, c, raw, after, r.RemoteAddr)
		return
	}
	h.serve(ctx, c, after, r.RemoteAddr)
}

// serveRaw serves a stream that took its connection over (raw) until it
// ends, and ends its answer.
func (h *Hub) serveRaw(ctx context.Context, c *conn, raw *rawStream, after int64, remote string) {
	// Last: once Run has seen every such stream end, none touches the hub
	// or its logger.
	defer h.takenOver.Done()
	// Its client sees the stream end once all else about it is done, as
	// under net/http, which ends an answer only once its handler has
	// returned: the follower counted off, the end logged, and what the
	// handlers around the hub do at its end (WithEndHook).
	defer c.close(ctx, raw)
	defer h.recoverStream(raw, remote)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The client going away ends the stream at once: nobody else reads a
	// connection the stream took over.
	go raw.watch(cancel)
	h.serve(ctx, c, after, remote)
}

// recoverStream, deferred by serveRaw, ends a panic of its stream as
// net/http's recovery ends a handler's: it logs it, and the stream ends
// without another write (what it was writing when it panicked may be
// half done). A detached stream has no handler around it any more, and
// its panic would otherwise end the process and every stream with it.
func (h *Hub) recoverStream(raw *rawStream, remote string) {
	p := recover()
	if p == nil {
		return
	}
	raw.broken.Store(true)
	if p != http.ErrAbortHandler {
		h.log.Error("feed: panic serving a stream", "remote", remote, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	}
}

// serve serves the stream c until it ends, and logs its end.
func (h *Hub) serve(ctx context.Context, c *conn, after int64, remote string) {
	if c.follower != "" {
		defer h.fl.disconnected(c.follower)
	}
	// The answer's headers go with the stream's first events (a
	// heartbeat once caught up, milliseconds away), in one write: a
	// write of their own costs a node a system call and its follower a
	// wake-up per stream, in every reconnect storm.
	c.begin()
	// The stream ends when the hub stops, also while it waits on the
	// Source: Run waits for a stream that took its connection over, and
	// net/http ends such a request's context only once it has returned.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.stopCtx, cancel)()
	c.own.Lock()
	err := c.serve(ctx, after)
	c.quit = true // the hub's fan-out leaves it be from here on
	c.own.Unlock()
	h.ended(ctx, remote, c, after, err)
}

type (
	endHookKey    struct{}
	detachHookKey struct{}
)

// WithEndHook returns ctx carrying f, which a stream served with it calls
// at its end before its client can see it end: a stream that took its
// connection over from net/http ends its answer before the handlers
// around the hub return, or after they returned (WithDetachHook), so
// what they do at a stream's end (free its place under a cap, log why it
// ended) goes in f. f may be called again after the hub's handler
// returns; it must do its work once.
func WithEndHook(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, endHookKey{}, f)
}

// WithDetachHook returns ctx carrying f, which allows a stream served with
// it to go on after the hub's handler returned (see Hub.ServeHTTP). The
// hub calls f on the handler's goroutine before it returns, for such a
// stream only; f must see to it that the handlers around the hub, as they
// return, neither end nor count the stream (WithEndHook's f does that at
// its end), and that ctx outlives the request: net/http cancels a
// request's context once its handler returned.
func WithDetachHook(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, detachHookKey{}, f)
}

// close ends the answer of a stream that took its connection over (raw),
// once the hook of ctx (WithEndHook) has run, and closes the connection.
func (c *conn) close(ctx context.Context, raw *rawStream) {
	if f, ok := ctx.Value(endHookKey{}).(func()); ok {
		f()
	}
	c.begin()
	raw.end(c.err != nil || raw.left.Load() || raw.broken.Load())
}

// open checks a stream's request, registers its follower and sets the
// answer's headers, or answers an error and reports false.
func (h *Hub) open(w http.ResponseWriter, r *http.Request) (*conn, int64, bool) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		httperr.Write(w, http.StatusMethodNotAllowed, httperr.InvalidRequest, "the feed is read with GET")
		return nil, 0, false
	}
	after, err := parsePosition(r)
	if v := r.URL.Query().Get(versionParam); err == nil && v != "" && v != version {
		err = fmt.Errorf("this node speaks version %s of the feed protocol, not %q", version, v)
	}
	if err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.InvalidRequest, err.Error())
		return nil, 0, false
	}
	f, epoch, named, err := parseFollower(r.Header.Get(headerFollower))
	if err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.InvalidRequest, err.Error())
		return nil, 0, false
	}
	select {
	case <-h.ready:
	case <-h.done:
	case <-r.Context().Done():
		return nil, 0, false
	}
	if h.isStopped() {
		httperr.Write(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the feed is shutting down")
		return nil, 0, false
	}
	hdr := w.Header()
	rc := http.NewResponseController(w)
	c := &conn{hub: h, out: httpWriter{w: w, rc: rc}, beatTicks: 1, parkAt: notParked}
	if named {
		token, err := h.follow(f, r.Header.Get(headerToken), requesterOf(r.Context()), epoch, after)
		if err != nil {
			followError(w, err)
			return nil, 0, false
		}
		hdr.Set(headerToken, token)
		c.follower, c.beatTicks = f.ID, h.beatTicks(f.StaleAfter)
		if hearsByReports(r.Header.Get(headerFollower)) {
			c.reports = h.fl.reportStreams(f.ID)
		}
	}
	hdr.Set(headerEpoch, h.epoch)
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	if !h.takeOver(c, w, rc, r) {
		w.WriteHeader(http.StatusOK)
	}
	return c, after, true
}

// ended logs the end of a stream served with ctx to remote.
func (h *Hub) ended(ctx context.Context, remote string, c *conn, after int64, err error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		h.log.Info("feed: dropped a slow connection", "remote", remote, "pos", c.pos, "err", err)
	case errors.Is(err, errSource) && ctx.Err() == nil:
		h.log.Warn("feed: connection ended", "remote", remote, "pos", c.pos, "err", err)
	default:
		h.log.Debug("feed: connection ended", "remote", remote, "after", after, "pos", c.pos, "err", err)
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
	return h.fl.connected(f, token, q, min(after, head), head, h.cfg.Clock.Now())
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
	case errors.Is(err, errReportStreams):
		w.Header().Set("Retry-After", "1")
		httperr.Write(w, http.StatusTooManyRequests, "too_many_streams", err.Error())
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
	// out writes the stream: net/http's response, or the connection the
	// stream took over from it (see takeover.go).
	out streamWriter
	pos int64  // every live entry <= pos has been written
	gen uint64 // the hub's log generation when the connection began
	// floor is the Source's head when the connection opened. No heartbeat
	// may claim a position below it: the hub's own head can lag the Source
	// by one wake-up, and a client told "you are current" at the hub's
	// head would report ready without entries already acknowledged.
	floor int64
	// follower is the id of a client that named itself ("" for one that
	// did not), which is sent asks; asked is the highest position asked
	// of it so far.
	follower string
	asked    int64
	// told is the position the client has heard: the id of the last
	// revocations event or heartbeat written. When the connection's
	// position moves past it without an entry (entries skipped as
	// expired), a heartbeat says so at once.
	told int64
	// beatTicks is how many of the hub's heartbeat ticks pass between
	// two heartbeats on this stream (see Hub.beatTicks).
	beatTicks uint64
	// reports counts the report streams open for the follower, when it
	// said it hears from the hub by their answers (hearsByReports): while
	// one is open, the stream sends no periodic heartbeat.
	reports *reportCount
	// nodesSent is the hub's nodesGen last written.
	nodesSent uint64
	// deadline is the write deadline set last: it is moved on only once
	// half of WriteTimeout has passed, not at every write (a timer update
	// per write per stream).
	deadline time.Time
	err      error // the first write error: the stream is over

	// What the hub's fan-out needs (fanout.go). own is held by whoever
	// works on the stream: its goroutine while it runs, a fan-out worker
	// while it writes to it; it guards the fields above. fan is the
	// connection the fan-out writes to (nil: this stream never parks),
	// wake the stream's goroutine's wake-up while it is parked, parkAt
	// where it is in the hub's parked streams (guarded by the hub's mu),
	// beatNext the tick its next heartbeat falls due at (0: none), quit
	// set once the stream no longer serves.
	own      sync.Mutex
	fan      *rawStream
	wake     chan struct{}
	parkAt   int
	beatNext uint64
	quit     bool

	buf    []byte  // this connection's own encoding (catch-up, heartbeats)
	frames []frame // catch-up scratch
}

func (c *conn) serve(ctx context.Context, after int64) error {
	var v view
	c.hub.look(0, &v, 0)
	c.pos, c.gen = after, v.gen
	head, err := c.hub.sourceHead(ctx)
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
	c.pos, c.told = 0, 0
	c.buf = appendReset(c.buf[:0], head)
	c.write(c.buf)
	return c.flush()
}

// catchUp reads the Source in batches until the connection's position is
// covered by the hub's ring.
func (c *conn) catchUp(ctx context.Context) error {
	var v view
	batch := c.hub.cfg.BatchSize
	defer c.shrink()
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
		c.frames = c.frames[:0]
		var lines arena
		for _, e := range entries {
			f, ok := newFrame(e, &lines)
			if !ok {
				c.hub.log.Error("feed: skipping an entry no line can carry", "seq", e.Seq, "kind", e.Kind)
				continue
			}
			c.frames = append(c.frames, f)
		}
		c.writeFrames(c.frames)
		clear(c.frames)
		if len(entries) < batch {
			c.pos = max(c.pos, srcHead)
		}
		if err := c.flush(); err != nil {
			return err
		}
	}
}

// shrink lets go of a catch-up's large buffers: a connection that is live
// writes shared segments and keeps only small buffers of its own.
func (c *conn) shrink() {
	if cap(c.buf) > 4<<10 {
		c.buf = nil
	}
	if cap(c.frames) > 64 {
		c.frames = nil
	}
}

// live follows the hub, with a heartbeat right after joining and on every
// hub tick, and an ask whenever a confirmation asks for a higher position.
// It returns errBehind when the ring has moved past the connection's
// position.
func (c *conn) live(ctx context.Context) error {
	var v view
	var sentBeat uint64
	first := true
	for {
		c.hub.look(c.pos, &v, liveBatch)
		if err := c.check(&v); err != nil {
			return err
		}
		wrote, caughtUp := false, true
		if len(v.segs) > 0 {
			wrote = c.writeSegments(v.segs)
		} else {
			if c.pos < v.base {
				return errBehind
			}
			wrote = c.writeFrames(v.frames)
			caughtUp = len(v.frames) < liveBatch
		}
		// While the follower hears from the hub on a report stream (lease
		// renewals come more often than heartbeats would), the stream
		// waits for no tick, only for the last report stream to end.
		var reportsEnd <-chan struct{}
		hears := false
		if c.reports != nil && !first {
			reportsEnd, hears = c.reports.open()
		}
		if caughtUp {
			c.pos = max(c.pos, v.head)
			due := v.beat-sentBeat >= c.beatTicks
			if due && hears {
				sentBeat, due = v.beat, false
			}
			if c.pos >= c.floor && (first || c.pos > c.told || due) {
				c.writeHeartbeat(&v)
				first, sentBeat, wrote = false, v.beat, true
			}
			// An ask goes once the stream has sent the entries up to
			// it, with them: the follower cannot answer it before.
			if c.follower != "" && v.want > c.asked && c.pos >= v.want {
				c.writeShared(v.askFrame)
				c.asked, wrote = v.want, true
			}
			if !first && v.nodesGen != c.nodesSent && v.nodesFrame != nil {
				c.writeShared(v.nodesFrame)
				c.nodesSent, wrote = v.nodesGen, true
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
		// The next heartbeat falls due beatTicks after the last; one due
		// but not sent (the hub's head is still below the floor) waits
		// for the next tick.
		var beat <-chan struct{}
		c.beatNext = 0
		switch {
		case first:
			beat = c.hub.beatAt(v.beat + 1)
		case !hears:
			c.beatNext = max(sentBeat+c.beatTicks, v.beat+1)
			beat = c.hub.beatAt(c.beatNext)
		}
		if err := c.wait(ctx, &v, first, beat, reportsEnd); err != nil {
			return err
		}
	}
}

// wait waits for the hub to change, for beat or reportsEnd. A stream
// caught up to the hub's head whose connection the hub's fan-out can
// write parks instead, and waits for its wake channel in place of the
// hub's changes (see fanout.go). A stream that could not park, since the
// hub changed after its look, returns at once.
//
// The stream is let go (own) before it parks: a fan-out finds every
// parked stream free to write to, and never has to wake one for a batch
// it could have written, however late the goroutine gets to its select.
func (c *conn) wait(ctx context.Context, v *view, first bool, beat, reportsEnd <-chan struct{}) error {
	changed := v.changed
	parked := c.fan != nil && !first && c.pos == v.head
	c.own.Unlock()
	if parked {
		if !c.hub.park(c, v.changed) {
			c.own.Lock()
			return nil
		}
		changed = c.wake
	}
	var err error
	select {
	case <-changed:
	case <-beat:
	case <-reportsEnd:
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.own.Lock()
	if !parked {
		return err
	}
	c.hub.unpark(c)
	if err != nil {
		return err
	}
	// What the fan-out left: the rest of a write the socket did not take
	// at once, or the error that ends the stream.
	return c.flush()
}

// writeSegments writes the hub's encoded batches from the connection's
// position on, and reports whether it wrote anything. A batch holding an
// entry that has expired since is written from its frames, leaving that
// entry out.
func (c *conn) writeSegments(segs []segment) bool {
	now := c.hub.cfg.Clock.Now()
	wrote := false
	for _, s := range segs {
		if s.from != c.pos {
			break
		}
		switch {
		case len(s.frames) == 0:
		case !s.expires.Add(c.hub.cfg.Grace).After(now):
			wrote = c.writeFrames(s.frames) || wrote
		default:
			c.writeShared(s.data)
			c.told, wrote = s.frames[len(s.frames)-1].entry.Seq, true
		}
		c.pos = s.to
	}
	return wrote
}

// writeFrames writes the frames after the connection's position, leaving
// out those expired, consecutive entries sharing revocations events, and
// reports whether it wrote anything.
func (c *conn) writeFrames(frames []frame) bool {
	now := c.hub.cfg.Clock.Now()
	buf := c.buf[:0]
	var b batcher
	for _, f := range frames {
		if f.entry.Seq <= c.pos {
			continue
		}
		if c.hub.live(f.entry, now) {
			buf = b.add(buf, f)
		}
		c.pos = f.entry.Seq
	}
	if b.n > 0 {
		c.told = b.last
	}
	c.buf = b.end(buf)
	if len(c.buf) == 0 {
		return false
	}
	c.write(c.buf)
	return true
}

// writeHeartbeat writes the tick's shared heartbeat when the connection is
// at its head, else one of its own.
func (c *conn) writeHeartbeat(v *view) {
	c.told = c.pos
	if v.beatFrame != nil && v.beatHead == c.pos {
		c.writeShared(v.beatFrame)
		return
	}
	c.buf = appendHeartbeat(c.buf[:0], c.pos, c.hub.cfg.Clock.Now(), c.hub.epochJSON)
	c.write(c.buf)
}

// begin keeps a write deadline between half of WriteTimeout and all of it
// ahead, so that a client that stopped reading cannot hold the connection
// for longer. The deadline is I/O, not logic: it uses the wall clock.
func (c *conn) begin() {
	now := time.Now()
	if c.deadline.Sub(now) > c.hub.cfg.WriteTimeout/2 {
		return
	}
	c.deadline = now.Add(c.hub.cfg.WriteTimeout)
	c.out.setWriteDeadline(c.deadline)
}

// write writes b, which the caller may reuse once write returns; an error
// shows at flush.
func (c *conn) write(b []byte) {
	if c.err != nil {
		return
	}
	c.begin()
	c.fail(c.out.write(b))
}

// writeShared writes b, one of the hub's encoded frames, which nobody
// modifies: a stream that took its connection over sends it from where
// it is, without a copy.
func (c *conn) writeShared(b []byte) {
	if c.err != nil {
		return
	}
	c.begin()
	c.fail(c.out.writeShared(b))
}

func (c *conn) flush() error {
	if c.err != nil {
		return c.err
	}
	c.begin()
	c.fail(c.out.flush())
	return c.err
}

// fail ends the stream on err, the first write error.
func (c *conn) fail(err error) {
	if err != nil {
		c.err = fmt.Errorf("feed: write: %w", err)
	}
}
