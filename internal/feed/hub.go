package feed

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// ErrHubRan is returned by Run when the Hub has already run: a Hub serves
// one process lifetime.
var ErrHubRan = errors.New("feed: hub already ran")

// HubConfig configures a Hub. Zero values mean the defaults.
type HubConfig struct {
	// Heartbeat is how often connections get a heartbeat and the Source is
	// read even without a wake-up (which may have been lost). Default 1s.
	Heartbeat time.Duration
	// BatchSize is how many entries are read from the Source at once.
	// Default 1000.
	BatchSize int
	// RingSize is how many recent entries the hub keeps in memory. A
	// connection further behind reads the Source itself, in batches, until
	// it is back within the ring. Default 32768: a bulk revocation call
	// lands up to 10,000 entries at once, which the hub reads back to back,
	// and connections that did not get a CPU meanwhile (a busy machine)
	// must find them in memory, or each would read the log again on its
	// own (a query and an encoding per follower, not per node). About 8
	// MiB when full.
	RingSize int
	// WriteTimeout drops a connection whose write blocks this long (a
	// client that stopped reading), so that it holds no goroutine and no
	// memory for long; the client resumes with Last-Event-ID. Default 10s.
	WriteTimeout time.Duration
	// Grace is how long past its ExpiresAt an entry is still sent. A
	// verifier whose clock is behind the hub's (within the skew tolerated,
	// the leeway) still accepts the tokens an entry covers after the hub's
	// clock says it expired; one that connects then must still get it. The
	// authority sets it to its leeway, which verifiers may not exceed.
	// Zero: none.
	Grace time.Duration
	// Clock decides which entries have expired, stamps heartbeats and
	// times them. Default the wall clock.
	Clock clock.Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Epoch identifies the log (the cluster's epoch): every stream and
	// heartbeat carries it, and a verifier that sees it change starts over.
	// Empty: random, for this hub only.
	Epoch string
	// Issuer is the cluster's issuer, named in `nodes` events (SetNodes).
	Issuer string
	// License, when set, bounds the leases the hub grants verifiers (see
	// ServePosition): no lease lasts beyond the instant it returns, and
	// none is granted once that has passed. Nil: leases as long as each
	// verifier's staleness bound.
	License func() time.Time
	// StaleAfterCap is the longest staleness bound the hub takes a
	// follower at: a follower that names a longer one gets leases no
	// longer than the cap, and its record goes once it has been silent
	// that long, so that no record, lease or wait outlives it. Zero:
	// DefaultStaleAfterCap; negative: MaxStaleAfter.
	StaleAfterCap time.Duration
	// Heard, when set, returns what the Source's process has heard of the
	// log's appends (store.Notifier.Heard): the highest head committed,
	// and the highest committed by an append whose caller waits for its
	// confirmation. A wake-up comes after them. The hub reads the log up
	// to a head heard without reading the head first, and asks its
	// followers for an asked head in the same write as the entries (see
	// Ask). Nil: the head is read at every wake-up, and only Ask asks.
	Heard func() (head, asked int64)
	// SharedRecords says that other nodes read the follower records this
	// hub hands out to be stored (ChangedFollowers), and judge by their
	// Heard whether a follower is still live: every report then hands the
	// record out again, a renewal included. Without it (a single node,
	// which lists its followers from memory) only reports that change a
	// record do.
	SharedRecords bool
	// FollowersPerKey and FollowersPerAddress cap the follower records
	// made for one API key and from one client address (see Requester).
	// A record outlives its streams by up to its staleness bound, so a
	// cap counts verifiers that restarted lately too. Past a cap, a stream
	// that would make a record is refused with 429. Zero: no cap.
	FollowersPerKey, FollowersPerAddress int
}

// DefaultStaleAfterCap is HubConfig.StaleAfterCap's default.
const DefaultStaleAfterCap = 5 * time.Minute

func (c HubConfig) withDefaults() HubConfig {
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.RingSize <= 0 {
		c.RingSize = 32768
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	c.Clock = clock.Or(c.Clock)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.StaleAfterCap == 0:
		c.StaleAfterCap = DefaultStaleAfterCap
	case c.StaleAfterCap < 0 || c.StaleAfterCap > MaxStaleAfter:
		c.StaleAfterCap = MaxStaleAfter
	}
	if c.Epoch == "" {
		c.Epoch = randomToken()
	}
	return c
}

// Hub serves the feed of one Source to any number of connections. One
// tailer goroutine (Run) reads the Source when woken and on every heartbeat
// tick, keeps the recent entries encoded in a ring and wakes the
// connections; each connection copies what it needs from the ring at its own
// pace, so a slow one delays nobody.
type Hub struct {
	src   Source
	cfg   HubConfig
	log   *slog.Logger
	epoch string
	// epochJSON is epoch encoded once for heartbeats.
	epochJSON []byte
	fl        *followers // the verifiers following this hub; see followers.go

	// frames is the tailer's scratch for a batch: the ring keeps copies.
	frames []frame
	// heardBefore is what HubConfig.Heard returned when the hub last
	// found the log replaced (see heard). The tailer's.
	heardBefore struct{ head, asked int64 }

	ran   atomic.Bool
	ready chan struct{} // closed once Run has read the head
	// unread is set while the tailer's last read of the Source failed: a
	// hub that cannot read the log grants no lease (see reading).
	unread atomic.Bool
	// stopCtx ends when the hub stops: report streams end with it.
	stopCtx    context.Context
	stopCancel context.CancelFunc
	done       chan struct{} // closed when Run returns
	kicked     chan struct{} // a connection saw a newer head than the hub's
	heads      headReads     // the Source's head, read for streams opening
	// takenOver counts the streams that took their connection over from
	// net/http (takeover.go): the HTTP server's Shutdown no longer waits
	// for them, so Run does, once it has stopped them. It is only added
	// to under mu (read) while the hub is not stopped.
	takenOver sync.WaitGroup

	mu   sync.RWMutex
	ring ring
	// segs are the events of the latest batches, encoded once for every
	// connection that is at the batch's start (nearly all of them).
	segs segments
	head int64
	beat uint64 // heartbeat ticks so far
	// beatFrame is the heartbeat of the latest tick, for the connections
	// at beatHead.
	beatFrame []byte
	beatHead  int64
	// beats wakes the connections whose heartbeat falls due at a tick:
	// beats[t%len(beats)] is closed when tick t comes, for the ticks after
	// beat up to beat+len(beats)-1. A tick wakes only the streams due
	// then, not every stream: on a named follower's stream a heartbeat
	// falls due every few ticks (beatTicks).
	beats []chan struct{}
	// want is the highest position a confirmation asked for, askFrame its
	// ask event.
	want     int64
	askFrame []byte
	// nodes are the advertised URLs (SetNodes), nodesFrame their event,
	// nodesGen the number of changes.
	nodes      []string
	nodesFrame []byte
	nodesGen   uint64
	gen        uint64        // changes when the log was replaced
	changed    chan struct{} // closed (and replaced) on every change above
	stopped    bool
	// parked are the streams the fan-out writes to (fanout.go), spare a
	// list for the next ones once a fan-out took them.
	parked, spare []*conn
	// fanned counts the writes of the fan-out, fanRests those the socket
	// did not take whole, for tests.
	fanned, fanRests atomic.Int64
	// licenseAt, when set, bounds a lease naming head as License does
	// (a relay's hub: relay.go).
	licenseAt func(head int64) time.Time
}

// NewHub returns a Hub serving src. Call Run to start it.
func NewHub(src Source, cfg HubConfig) *Hub {
	cfg = cfg.withDefaults()
	h := &Hub{
		src:     src,
		cfg:     cfg,
		log:     cfg.Logger,
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
		kicked:  make(chan struct{}, 1),
		changed: make(chan struct{}),
	}
	h.epoch = cfg.Epoch
	h.beats = make([]chan struct{}, h.maxBeatTicks()+1)
	for i := range h.beats {
		h.beats[i] = make(chan struct{})
	}
	h.stopCtx, h.stopCancel = context.WithCancel(context.Background())
	h.fl = newFollowers(followerLimits{perKey: cfg.FollowersPerKey, perAddr: cfg.FollowersPerAddress, staleCap: cfg.StaleAfterCap})
	h.fl.shared = cfg.SharedRecords
	h.epochJSON, _ = json.Marshal(cfg.Epoch) // a string always encodes
	return h
}

// kick asks the tailer to read the Source now (coalesced, never blocks).
func (h *Hub) kick() {
	select {
	case h.kicked <- struct{}{}:
	default:
	}
}

// Head returns the position the hub has read the Source up to.
func (h *Hub) Head() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.head
}

// Run tails the Source until ctx is done, then ends every connection and
// returns nil. Errors of the Source are logged and retried on the next
// tick.
func (h *Hub) Run(ctx context.Context) error {
	if !h.ran.CompareAndSwap(false, true) {
		return ErrHubRan
	}
	defer close(h.done)
	defer h.takenOver.Wait()
	defer h.stop()
	// Subscribe before reading the head, so no append falls in between.
	wake, unsubscribe := h.src.Subscribe()
	defer unsubscribe()
	tick := clock.NewTicker(h.cfg.Clock, h.cfg.Heartbeat)
	defer tick.Stop()
	if !h.start(ctx, tick.C) {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
			h.poll(ctx, true)
		case <-h.kicked:
			h.poll(ctx, false)
		case <-tick.C:
			// A heartbeat tells verifiers "you have everything up to the
			// head". Only a successful read of the log may say so: a node
			// cut off from its database while other nodes still record
			// revocations must go quiet, so its verifiers turn stale and
			// fail over, instead of trusting a set that misses entries.
			if h.poll(ctx, false) && h.vouching() {
				h.heartbeat()
			}
		}
	}
}

// start reads the head the ring begins at, retrying until the Source
// answers. It reports false if ctx ended first.
func (h *Hub) start(ctx context.Context, tick <-chan time.Time) bool {
	for {
		head, err := h.src.Head(ctx)
		if err == nil {
			h.mu.Lock()
			h.head, h.ring = head, newRing(h.cfg.RingSize, head)
			h.mu.Unlock()
			h.fl.replaced(head)
			close(h.ready)
			return true
		}
		h.log.Warn("feed: reading the log head failed", "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-tick:
		}
	}
}

// poll reads everything the Source has after the hub's head into the ring.
// It reports whether the Source answered. woken says a wake-up of the
// Source brought it: a head heard since (HubConfig.Heard) then stands for
// the head's read.
func (h *Hub) poll(ctx context.Context, woken bool) bool {
	for {
		full, err := h.pollBatch(ctx, woken)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("feed: reading the log failed", "err", err)
			}
			h.unread.Store(true)
			return false
		}
		if !full {
			h.unread.Store(false)
			// An ask heard after the entries it asks for were read is
			// written on its own.
			if _, asked := h.heard(); asked > 0 {
				h.Ask(asked)
			}
			return true
		}
	}
}

// heard is HubConfig.Heard, or nothing heard without it. What was heard
// of the log before the hub found it replaced (by a lower head) is
// another log's, and is left out.
func (h *Hub) heard() (head, asked int64) {
	if h.cfg.Heard == nil {
		return 0, 0
	}
	head, asked = h.cfg.Heard()
	if head <= h.heardBefore.head {
		head = 0
	}
	if asked <= h.heardBefore.asked {
		asked = 0
	}
	return head, asked
}

// sourceHeadAfter returns the Source's head, where the hub at pos reads
// from. After a wake-up, a head heard above pos stands for it: the append
// that raised it committed, so every entry up to it is visible, and a
// notified commit costs one read instead of two. Ticks and kicks read the
// head itself, which also finds a log replaced by a lower head and
// appends whose notification was lost.
func (h *Hub) sourceHeadAfter(ctx context.Context, pos int64, woken bool) (int64, error) {
	if woken {
		if heard, _ := h.heard(); heard > pos {
			return heard, nil
		}
	}
	return h.src.Head(ctx)
}

// reading reports whether the tailer's last read of the Source worked. A
// hub that cannot read the log sends no heartbeats, so that its followers
// go to another node; it grants no lease either, since the answers to
// lease renewals are what keep some followers' streams alive
// (hears=reports) in place of heartbeats.
func (h *Hub) reading() bool { return !h.unread.Load() }

// pollBatch reads one batch and reports whether it was full (more may
// follow).
func (h *Hub) pollBatch(ctx context.Context, woken bool) (full bool, err error) {
	// The head is known first: every entry up to it is then visible, so
	// after a short batch the position may move up to it even when the
	// entries in between were pruned.
	pos := h.Head()
	srcHead, err := h.sourceHeadAfter(ctx, pos, woken)
	if err != nil {
		return false, err
	}
	switch {
	case srcHead < pos:
		h.replaced(srcHead)
		return false, nil
	case srcHead == pos:
		// Nothing new: a tick of an idle hub reads the head alone.
		return false, nil
	}
	entries, err := h.src.EntriesAfter(ctx, pos, h.cfg.BatchSize)
	if err != nil {
		return false, err
	}
	frames, next := h.encode(entries, pos)
	full = len(entries) >= h.cfg.BatchSize
	if !full {
		next = max(next, srcHead)
	}
	_, asked := h.heard()
	j := h.publish(frames, next, srcHead, asked)
	clear(frames) // the ring holds copies; keep no lines alive from here
	if j != nil {
		h.fanOut(j)
	}
	return full, nil
}

// live reports whether e is still sent at now: until Grace past its expiry.
func (h *Hub) live(e revocation.Entry, now time.Time) bool {
	return e.ExpiresAt.Add(h.cfg.Grace).After(now)
}

// encode turns the entries after pos into frames, leaving out those already
// expired (beyond Grace), and returns the position they reach. The frames
// are the tailer's scratch, valid until the next encode.
func (h *Hub) encode(entries []revocation.Entry, pos int64) ([]frame, int64) {
	now := h.cfg.Clock.Now()
	frames := h.frames[:0]
	var lines arena
	for _, e := range entries {
		if e.Seq <= pos {
			continue // out of order: a Source bug; never send backwards
		}
		pos = e.Seq
		if !h.live(e, now) {
			continue
		}
		f, ok := newFrame(e, &lines)
		if !ok {
			h.log.Error("feed: skipping an entry no line can carry", "seq", e.Seq, "kind", e.Kind)
			continue
		}
		frames = append(frames, f)
	}
	h.frames = frames
	return frames, pos
}

// newFrame encodes e's line, taken from lines; ok is false if no line can
// carry e (see appendLine).
func newFrame(e revocation.Entry, lines *arena) (frame, bool) {
	line, tail, ok := lines.line(e)
	return frame{entry: e, line: line, mid: uint8(len("data: ") + seqLen(e.Seq)), tail: uint8(tail)}, ok
}

// arenaChunk is the size of the arrays an arena hands lines out of: a few
// hundred lines each.
const arenaChunk = 16 << 10

// arena hands out the lines of a batch of entries from shared arrays, so
// that encoding a batch costs an allocation per few hundred entries rather
// than several per entry. A line is never written again once handed out
// (its capacity ends with it), so frames share the arrays safely; an
// array lives as long as any frame holding one of its lines.
type arena struct{ buf []byte }

// line encodes e's line (appendLine), with where its tail begins, and
// reports false if no line can carry it.
func (a *arena) line(e revocation.Entry) ([]byte, int, bool) {
	// data: + 4 numbers of up to 20 characters + kind + 5 separators + key
	need := 6 + 4*20 + len(e.Kind) + 5 + len(e.Session) + len(e.Subject)
	if cap(a.buf)-len(a.buf) < need {
		a.buf = make([]byte, 0, max(arenaChunk, need))
	}
	start := len(a.buf)
	var ok bool
	var tail int
	if a.buf, tail, ok = appendLine(a.buf, e); !ok {
		a.buf = a.buf[:start]
		return nil, 0, false
	}
	return a.buf[start:len(a.buf):len(a.buf)], tail, true
}

// publish adds the frames read, which take the hub to next, to the ring
// and as a segment; srcHead is the Source's head when they were read. An
// ask for asked goes to the streams in the same write as the frames. It
// returns the fan-out of the segment to the parked streams, if any, for
// the caller to run (fanOut).
func (h *Hub) publish(frames []frame, next, srcHead, asked int64) *fanJob {
	h.mu.Lock()
	defer h.mu.Unlock()
	if next <= h.head {
		return nil
	}
	if asked > h.want {
		h.want, h.askFrame = asked, appendAsk(nil, asked)
	}
	for _, f := range frames {
		h.ring.push(f)
	}
	s := newSegment(h.head, next, frames, srcHead)
	h.segs.push(s)
	h.head = next
	h.wakeUnparkedLocked()
	h.fl.advanced(next, h.cfg.Clock.Now())
	return h.fanOutLocked(s)
}

// replaced handles a Source whose head went back: the log was restored or
// replaced. Connections are dropped; they come back beyond the new head and
// are told to reset.
func (h *Hub) replaced(head int64) {
	if h.cfg.Heard != nil {
		h.heardBefore.head, h.heardBefore.asked = h.cfg.Heard()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log.Error("feed: the log head went back; the log was replaced (a restored database?): stop every node and start one with "+
		"--new-epoch, or verifiers that reconnect later may resume inside reused positions", "was", h.head, "now", head)
	h.head = head
	h.ring.reset(head)
	h.segs.reset()
	// Asks were for the old log's positions: a confirmation on the new
	// log asks for positions below them, and Ask ignores what is not
	// above want.
	h.want, h.askFrame = 0, nil
	h.gen++
	h.wakeLocked()
	h.fl.replaced(head)
}

// heartbeat encodes the tick's heartbeat once and wakes the connections
// whose heartbeat is due.
func (h *Hub) heartbeat() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.beat++
	h.beatHead = h.head
	h.beatFrame = appendHeartbeat(nil, h.head, h.cfg.Clock.Now(), h.epochJSON)
	i := h.beat % uint64(len(h.beats))
	close(h.beats[i])
	h.beats[i] = make(chan struct{}) // for tick beat+len(beats)
}

// closedChan is a channel that is always ready.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// beatAt returns a channel closed at heartbeat tick n, which must be at
// most the current tick plus maxBeatTicks.
func (h *Hub) beatAt(n uint64) <-chan struct{} {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if n <= h.beat {
		return closedChan
	}
	return h.beats[n%uint64(len(h.beats))]
}

// maxBeatTicks is the most ticks between two heartbeats on a stream:
// maxNamedBeat's worth, and at most maxBeatRing.
func (h *Hub) maxBeatTicks() uint64 {
	return uint64(min(max(1, maxNamedBeat/h.cfg.Heartbeat), maxBeatRing))
}

// maxBeatRing bounds Hub.beats (a hub ticking every millisecond would
// otherwise keep 5,000 channels).
const maxBeatRing = 1024

// maxNamedBeat is the longest a named follower's stream goes without a
// heartbeat. Followers drop a stream silent for at least half their
// staleness bound (and 2s; tegata's Go follower waits three quarters, the
// Node follower half), so a named stream gets one every quarter of its
// follower's bound, between one tick and this.
const maxNamedBeat = 5 * time.Second

// beatTicks is how many heartbeat ticks pass between two heartbeats on
// the stream of a follower whose staleness bound is staleAfter. A named
// follower's freshness rests on leases, not heartbeats: a heartbeat only
// shows the stream is alive, so most streams need one far less often
// than every tick, and each costs the hub a write per stream.
func (h *Hub) beatTicks(staleAfter time.Duration) uint64 {
	every := min(staleAfter/4, maxNamedBeat)
	return min(uint64(max(1, every/h.cfg.Heartbeat)), h.maxBeatTicks())
}

// Ask has every named follower report its position once it has applied
// pos: a confirmation waits for it. Followers report only when asked, to
// renew their lease, or when their readiness changes, so without an ask
// the hub's record of their positions may be seconds old.
//
// An ask for a position the hub has not read yet (a revocation just
// committed, nearly every ask) wakes no stream: the streams write it
// with the entries up to pos, when the tailer publishes them, in the
// same write. Waking them now would cost every stream a write of its
// own for an ask it cannot answer before the entries arrive.
func (h *Hub) Ask(pos int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pos <= h.want {
		return
	}
	h.want, h.askFrame = pos, appendAsk(nil, pos)
	if pos <= h.head {
		h.wakeLocked()
	}
}

// vouching reports whether the hub may send heartbeats: always, but on a
// relay's hub only while the relay holds a lease for the hub's head. A
// follower that does not name itself judges its freshness by heartbeats
// alone, and a relay cut off from its nodes must go quiet for it as a
// node cut off from its database does.
func (h *Hub) vouching() bool {
	return h.licenseAt == nil || h.licenseAt(h.Head()).After(h.cfg.Clock.Now())
}

// awaitReplaced has the tailer read the Source at once and waits until it
// has found the log replaced (its head gone back below the hub's), the
// hub's head is 0 (nothing to replace) or the hub has stopped. The caller
// must append nothing to the Source meanwhile: a new log growing past the
// old head before the tailer looks would pass for the old one's
// continuation.
func (h *Hub) awaitReplaced() {
	select {
	case <-h.ready:
	case <-h.done:
		return
	}
	h.mu.RLock()
	gen := h.gen
	h.mu.RUnlock()
	for {
		h.mu.RLock()
		waiting := h.gen == gen && h.head > 0 && !h.stopped
		changed := h.changed
		h.mu.RUnlock()
		if !waiting {
			return
		}
		h.kick()
		select {
		case <-changed:
		case <-h.done:
			return
		}
	}
}

func (h *Hub) stop() {
	h.stopCancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	h.wakeLocked()
}

// wakeLocked wakes every stream.
func (h *Hub) wakeLocked() {
	h.wakeUnparkedLocked()
	h.wakeParkedLocked()
}

// wakeUnparkedLocked wakes the streams that wait on changed: every one
// but those parked (see fanout.go).
func (h *Hub) wakeUnparkedLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// view is what a connection sees of the hub at one instant.
type view struct {
	frames []frame
	// segs, when set, are the encoded batches from the connection's
	// position on (frames is then empty).
	segs    []segment
	head    int64
	base    int64
	beat    uint64
	gen     uint64
	changed <-chan struct{}
	stopped bool
	// The latest heartbeat, and the latest ask.
	beatFrame []byte
	beatHead  int64
	want      int64
	askFrame  []byte
	// The latest nodes event, and how many there were.
	nodesFrame []byte
	nodesGen   uint64
}

// look fills v: the encoded batches from pos on when pos is where one
// starts (segs), else up to limit frames after pos (frames).
func (h *Hub) look(pos int64, v *view, limit int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	v.frames, v.segs = v.frames[:0], h.segs.from(pos, v.segs[:0])
	if len(v.segs) == 0 && pos >= h.ring.base {
		v.frames = h.ring.after(pos, v.frames, limit)
	}
	v.head, v.base, v.beat, v.gen = h.head, h.ring.base, h.beat, h.gen
	v.changed, v.stopped = h.changed, h.stopped
	v.beatFrame, v.beatHead, v.want, v.askFrame = h.beatFrame, h.beatHead, h.want, h.askFrame
	v.nodesFrame, v.nodesGen = h.nodesFrame, h.nodesGen
}
