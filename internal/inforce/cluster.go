package inforce

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// Hub is this node's feed hub, as a Cluster uses it. Followers,
// FollowerStats and Pending count the same followers: those heard within
// their staleness bound.
type Hub interface {
	Safe() (safe, head int64, next time.Time)
	Followers() []feed.FollowerState
	// FollowerStats returns how many followers there are and the longest
	// staleness bound among them.
	FollowerStats() (n int, longest time.Duration)
	// ChangedFollowers returns the followers whose stored record is out
	// of date (new, changed, or, where other nodes read the records,
	// heard since it was last returned), each once until it is again.
	ChangedFollowers() []feed.FollowerState
	// Pending returns up to limit of the followers for which x is not yet
	// in force, and how many there are in all.
	Pending(x int64, limit int) ([]feed.FollowerState, int)
	FollowersChanged() <-chan struct{}
	// Ask has the followers report their positions once they have applied
	// x: they report only when asked (or to renew their leases), so a wait
	// for x must ask.
	Ask(x int64)
}

// Store is what a Cluster reads and writes.
type Store interface {
	store.Followers
	Head(ctx context.Context) (int64, error)
	EntriesAfter(ctx context.Context, after int64, limit int) ([]revocation.Entry, error)
}

// License is how long this node may let the leases it grants run: until
// the expiry of its last record written durably. The hub reads it (as
// feed.HubConfig.License) and the Cluster sets it. Safe for concurrent use.
type License struct{ until atomic.Int64 }

// Until returns the instant no lease may outlive; the zero time before the
// node's first record is written.
func (l *License) Until() time.Time {
	n := l.until.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (l *License) set(t time.Time) { l.until.Store(t.UnixNano()) }

// Config wires a Cluster. Zero values mean the defaults.
type Config struct {
	// NodeID names this node process; default random.
	NodeID string
	// URL is where this node listens, for people reading the list.
	URL string
	// Advertise is the URL verifiers may follow this node at; empty: not
	// advertised.
	Advertise string
	// Members, when set, is called after each write of this node's record
	// with the URLs the live nodes advertise (this one's included), sorted.
	Members func(urls []string)
	// Epoch is the cluster's: messages of other clusters sharing the
	// database are ignored.
	Epoch string
	Hub   Hub
	Store Store
	// License is the hub's license, which the Cluster keeps current.
	License *License
	// Broadcaster carries messages between nodes; nil for a single node.
	Broadcaster store.Broadcaster
	// FlushEvery is how often the node writes its records. Default 1s.
	FlushEvery time.Duration
	// StaleAfter is the staleness bound assumed for verifiers not yet
	// seen, when working out how long this node's record vouches. Default
	// 10s.
	StaleAfter time.Duration
	// Skew is how far node clocks may disagree: a node's record is taken as
	// expired only this long after its expiry. Default 1s.
	Skew time.Duration
	// Clock is the node's clock: record expiries, and the timers of
	// flushes, evaluations and waits. Default the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.NodeID == "" {
		b := make([]byte, 9)
		_, _ = rand.Read(b)
		c.NodeID = base64.RawURLEncoding.EncodeToString(b)
	}
	if c.License == nil {
		c.License = new(License)
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = time.Second
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = 10 * time.Second
	}
	if c.Skew <= 0 {
		c.Skew = time.Second
	}
	c.Clock = clock.Or(c.Clock)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Evaluations of the hub while some node waits are spaced out by their
// cost: each looks at every follower, and a confirmed revocation brings a
// report from each of them within milliseconds. With a handful of
// followers an evaluation takes microseconds and runs at once; with ten
// thousand it takes milliseconds (BenchmarkSafe10k), and waiting then
// costs at most 1/evalShare of a core.
//
// The spacing is capped at maxEvalSpacing: evalCost is wall time, and on a
// busy machine it counts the time the goroutine waited for a thread, which
// would space evaluations out by far more than their CPU (a confirmation
// with 2,000 verifiers waited seconds for a few evaluations).
//
// Spacing budgets the machine's time, not the cluster's, so it is measured
// and waited out on the wall clock (clock.Real) whatever Config.Clock is: on
// a clock that stands still, as a test's does, an evaluation spaced out on
// that clock would never come, and a Confirm would wait for it forever.
const (
	minEval        = 50 * time.Microsecond
	evalShare      = 5
	maxEvalSpacing = 20 * time.Millisecond
)

// Cluster is this node's view of the cluster's verifiers. Build it with
// New, write its first record with Register, then Run it.
type Cluster struct {
	cfg Config
	log *slog.Logger

	version   atomic.Int64 // of this node's records
	kick      chan struct{}
	metrics   *metrics
	listCache listCache // for the metrics

	mu         sync.Mutex
	own        store.NodeRecord     // this node, as last evaluated
	looks      int64                // evaluations that set own's Safe, Head and Followers
	nodes      map[string]nodeState // the other nodes, newest version of each
	localWant  int64                // the highest position a Confirm here waits for
	asked      int64                // the highest position asked of the other nodes
	askedAt    time.Time            // when a want was last broadcast (see ask)
	remoteWant int64                // the highest position another node asked for
	announced  int64                // the highest safe position broadcast
	changed    chan struct{}        // closed (and replaced) when own or nodes change

	// Used by Register, then by the flushing goroutine only (goFlush).
	unsaved []store.VerifierRecord // verifier records a failed flush did not write
	failing bool
	flushes int // since start, to prune now and then

	// Used by Run's goroutine only.
	lastEval time.Time     // on the wall clock, as the spacing is
	evalCost time.Duration // how long the last evaluation took
	sentLag  string        // the pending list last announced, as a signature
	lagWant  int64         // the want this node was last behind
	lagSince time.Time     // when it found itself behind lagWant
	listed   bool          // the last message announced named who lags
}

// nodeState is another node as this one knows it: its newest record, and
// the followers it said were pending, if its newest news was such a list.
type nodeState struct {
	rec     store.NodeRecord
	want    int64     // what the pending list was for
	pending []Pending // complete list, or nil when unknown
}

// New returns a Cluster; cfg.Hub and cfg.Store are required.
func New(cfg Config) *Cluster {
	cfg.defaults()
	return &Cluster{cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1), metrics: newMetrics(),
		nodes: map[string]nodeState{}, changed: make(chan struct{})}
}

// NodeID returns this node's ID.
func (c *Cluster) NodeID() string { return c.cfg.NodeID }

// Register writes this node's first record, which licenses its hub to
// grant leases. Call it before the hub serves anyone: a node must be
// visible to others before it can vouch for a verifier, so that a wait
// that began before it registered never misses it (see the package
// documentation).
func (c *Cluster) Register(ctx context.Context) error {
	return c.flush(ctx)
}

// Run keeps the node's records current and answers other nodes until ctx
// ends.
func (c *Cluster) Run(ctx context.Context) error {
	var msgs <-chan string
	if c.cfg.Broadcaster != nil {
		m, stop := c.cfg.Broadcaster.Listen()
		defer stop()
		msgs = m
	}
	flushed := c.goFlush(ctx)
	defer func() { <-flushed }()
	timer, timerC := clock.NewTimer(c.cfg.Clock, time.Hour)
	defer timer.Stop()
	pace, paceC := clock.NewTimer(clock.Real, time.Hour)
	defer pace.Stop()
	hubChanged := c.cfg.Hub.FollowersChanged()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hubChanged:
			hubChanged = nil
		case <-c.kick:
		case <-timerC:
		case <-paceC:
		case m := <-msgs:
			c.handle(ctx, m)
		}
		c.evaluate(ctx, timer, pace, &hubChanged)
	}
}

// goFlush writes the node's records every FlushEvery until ctx ends, in
// a goroutine of its own, and returns a channel closed when it has
// stopped. A flush is a round trip that writes every verifier record that
// changed (during confirmations, all of them: each report moves a
// position), so on Run's goroutine it held up the evaluations and the
// messages that confirmations wait for, for as long as it took, on every
// node, once a second. Run looks at the new record once it is written.
func (c *Cluster) goFlush(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := clock.NewTicker(c.cfg.Clock, c.cfg.FlushEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				c.flushLogged(ctx)
				c.poke()
			}
		}
	}()
	return done
}

func (c *Cluster) license() time.Time { return c.cfg.License.Until() }

// flushLogged flushes, logging when writes start and stop failing.
func (c *Cluster) flushLogged(ctx context.Context) {
	err := c.flush(ctx)
	switch {
	case ctx.Err() != nil:
	case err != nil && !c.failing:
		c.log.Warn("inforce: writing this node's verifier records failed; once its last record expires it grants verifiers no lease", "err", err)
		c.failing = true
	case err == nil && c.failing:
		c.log.Info("inforce: writing this node's verifier records works again")
		c.failing = false
	}
}

// wanted is the highest position some node waits for.
func (c *Cluster) wanted() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(c.localWant, c.remoteWant)
}

// evaluate looks at the hub when some node waits for more than this node
// was last known to vouch for, announces progress to the nodes that asked,
// and arms timer for the next instant time alone may bring progress. An
// evaluation due before the spacing allows is left to pace, a wall-clock
// timer.
//
// hubChanged is the channel Run waits on for a change of the hub's
// followers, nil once it was closed. It is taken again right before the
// hub is looked at, so that no change after the look goes unseen, and let
// go while an evaluation waits for pace: the evaluation pace brings looks
// at every change made meanwhile, and a confirmation brings a report from
// every follower within milliseconds, each a change that would otherwise
// wake Run for nothing.
func (c *Cluster) evaluate(ctx context.Context, timer, pace clock.Timer, hubChanged *<-chan struct{}) {
	c.mu.Lock()
	need := max(c.localWant, c.remoteWant) > c.own.Safe
	c.mu.Unlock()
	if !need {
		if *hubChanged == nil {
			*hubChanged = c.cfg.Hub.FollowersChanged()
		}
		return
	}
	if wait := min(max(minEval, evalShare*c.evalCost), maxEvalSpacing) - clock.Real.Now().Sub(c.lastEval); wait > 0 {
		pace.Reset(wait)
		*hubChanged = nil
		return
	}
	*hubChanged = c.cfg.Hub.FollowersChanged()
	c.lastEval = clock.Real.Now()
	safe, head, next := c.cfg.Hub.Safe()
	followers, _ := c.cfg.Hub.FollowerStats()
	c.evalCost = clock.Real.Now().Sub(c.lastEval)
	c.mu.Lock()
	c.own.Safe, c.own.Head, c.own.Followers = safe, head, followers
	c.looks++
	want := c.remoteWant
	announce := want > c.announced && safe > c.announced
	if announce {
		c.announced = safe
	}
	c.wakeLocked()
	c.mu.Unlock()
	var lag *lagging
	now := c.cfg.Clock.Now()
	if want > safe {
		// Behind what another node waits for: tell it who holds it up,
		// whenever that changes, so its answer names them, once it has
		// been behind for lagAfter. Too many to name says nothing the
		// waiting node acts on (it reads the stored records then, as it
		// does with no list), unless it replaces a list this node sent
		// before, which would go stale.
		if want != c.lagWant {
			c.lagWant, c.lagSince = want, now
		}
		if due := c.lagSince.Add(lagAfter); now.Before(due) {
			lag = &lagging{want: want, sig: fmt.Sprint(want, " ...")}
			next = earliest(next, due)
		} else {
			lag = c.lagging(want)
		}
		announce = announce || (lag.sig != c.sentLag && (lag.pending != nil || c.listed))
		c.sentLag = lag.sig
	}
	if announce {
		c.announce(ctx, lag)
	}
	if !next.IsZero() {
		timer.Reset(max(next.Sub(now), minEval))
	}
}

// lagAfter is how long a node is behind a position another node waits for
// before it names the verifiers that hold it up. Most waits end sooner
// (tens of milliseconds): a list is for the answer of one that runs out,
// seconds later. Named from the start, the last ten verifiers to report
// each sent a message, a NOTIFY each, which Postgres commits one at a
// time with every other of the server, on the goroutine that then sends
// the record that ends the wait.
const lagAfter = 250 * time.Millisecond

// earliest returns the earlier of a and b, the zero time meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func (c *Cluster) wakeLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// record is this node's record as it stands.
func (c *Cluster) record() store.NodeRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.own
	r.ID, r.URL, r.Advertise = c.cfg.NodeID, c.cfg.URL, c.cfg.Advertise
	r.ExpiresAt = c.license()
	return r
}

// announce broadcasts this node's record, with the followers holding up
// a want when lag is set.
func (c *Cluster) announce(ctx context.Context, lag *lagging) {
	if c.cfg.Broadcaster == nil {
		return
	}
	r := c.record()
	r.Version = c.version.Add(1)
	r.UpdatedAt = c.cfg.Clock.Now()
	m := message{From: c.cfg.NodeID, Node: toMessage(r)}
	if lag != nil {
		m.Node.Want, m.Node.Pending, m.Node.Complete = lag.want, lag.pending, lag.pending != nil
		if s, err := encode(m); err != nil || len(s) > store.MaxBroadcast {
			m.Node.Pending, m.Node.Complete = nil, false
		}
	}
	c.listed = m.Node.Complete
	c.send(ctx, m)
}

// lagging is this node's followers not yet safe up to want.
type lagging struct {
	want    int64
	pending []Pending // nil: too many to name
	sig     string    // what the message says, to tell a change
}

// maxLagging bounds the pending followers one message names.
const maxLagging = 10

// lagging's signature says what its message says, and only that, so
// that a message goes only when that changes (see evaluate). Past
// maxLagging followers the message names none, and says so however many
// catch up meanwhile: the few that Pending returns are an arbitrary few,
// another few at each call, and naming them in the signature sent a
// message at every evaluation while a node was behind (every few
// milliseconds, from every node behind, each a NOTIFY that the log's
// appends queue behind).
func (c *Cluster) lagging(want int64) *lagging {
	fs, n := c.cfg.Hub.Pending(want, maxLagging)
	if n > len(fs) {
		return &lagging{want: want, sig: fmt.Sprint(want, " ...")}
	}
	slices.SortFunc(fs, func(a, b feed.FollowerState) int { return strings.Compare(a.ID, b.ID) })
	l := &lagging{want: want, pending: []Pending{}}
	var sig strings.Builder
	fmt.Fprint(&sig, want)
	for _, f := range fs {
		l.pending = append(l.pending, c.pendingOf(f))
		fmt.Fprintf(&sig, " %s:%d", f.ID, f.Position)
	}
	l.sig = sig.String()
	return l
}

func (c *Cluster) send(ctx context.Context, m message) {
	m.Epoch = c.cfg.Epoch
	s, err := encode(m)
	if err == nil {
		err = c.cfg.Broadcaster.Broadcast(ctx, s)
	}
	if err != nil && ctx.Err() == nil {
		c.log.Debug("inforce: broadcast failed", "err", err)
	}
}

// handle acts on a message from another node: a want, a record, or ""
// (messages may have been lost: read the records again).
func (c *Cluster) handle(ctx context.Context, s string) {
	if s == "" {
		if nodes, err := c.cfg.Store.FeedNodes(ctx, c.cfg.Clock.Now()); err == nil {
			c.merge(nodes)
		}
		return
	}
	m, err := decode(s)
	if err != nil {
		c.log.Debug("inforce: ignoring a message", "err", err)
		return
	}
	if m.From == c.cfg.NodeID || m.Epoch != c.cfg.Epoch {
		return
	}
	if m.Node != nil {
		c.mergeMessage(m.Node)
	}
	if m.Want > 0 {
		c.cfg.Hub.Ask(m.Want)
		c.mu.Lock()
		c.remoteWant = max(c.remoteWant, m.Want)
		// Answer every want, even one already announced: the asker may
		// have missed the earlier answer.
		c.announced = min(c.announced, m.Want-1)
		c.mu.Unlock()
	}
}

// merge takes the newest version of each other node's record.
func (c *Cluster) merge(rs []store.NodeRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range rs {
		if r.ID != c.cfg.NodeID {
			c.take(nodeState{rec: r})
		}
	}
	c.wakeLocked()
}

// mergeMessage takes a node's record from a message, with its pending
// list when complete.
func (c *Cluster) mergeMessage(m *nodeMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := m.record()
	if r.ID == c.cfg.NodeID {
		return
	}
	st := nodeState{rec: r}
	if m.Complete {
		st.want, st.pending = m.Want, m.Pending
		if st.pending == nil {
			st.pending = []Pending{}
		}
	}
	if c.take(st) {
		c.wakeLocked()
	}
}

// take makes st what this node knows of another node if its record is a
// newer version than the one known, and reports whether what it knows
// changed. Either way the known record expires at the later of the two
// expiries. A node numbers its records before writing them, and writes
// them on a goroutine of its own (goFlush): a message it sends while a
// flush writes has the higher version but the expiry of the flush before,
// and once the flush has written, the node's leases may run to the
// flush's expiry. Counting its verifiers as refusing tokens from the
// newer version's expiry would answer a wait too early, by as much as the
// flushes are apart.
func (c *Cluster) take(st nodeState) bool {
	old, ok := c.nodes[st.rec.ID]
	switch {
	case !ok:
	case old.rec.Version >= st.rec.Version:
		if !st.rec.ExpiresAt.After(old.rec.ExpiresAt) {
			return false
		}
		old.rec.ExpiresAt = st.rec.ExpiresAt
		st = old
	case old.rec.ExpiresAt.After(st.rec.ExpiresAt):
		st.rec.ExpiresAt = old.rec.ExpiresAt
	}
	c.nodes[st.rec.ID] = st
	return true
}

// flush writes this node's record and the verifier records that changed,
// and on success extends the license to the record's expiry.
func (c *Cluster) flush(ctx context.Context) error {
	now := c.cfg.Clock.Now()
	c.mu.Lock()
	looks := c.looks
	c.mu.Unlock()
	safe, head, _ := c.cfg.Hub.Safe()
	n, longest := c.cfg.Hub.FollowerStats()
	longest = max(longest, c.cfg.StaleAfter)
	rec := store.NodeRecord{ID: c.cfg.NodeID, URL: c.cfg.URL, Advertise: c.cfg.Advertise, Safe: safe, Head: head, Followers: n,
		Version: c.version.Add(1), UpdatedAt: now, ExpiresAt: now.Add(2*c.cfg.FlushEvery + longest)}
	vs := c.changedRecords(c.cfg.Hub.ChangedFollowers())
	nodes, err := c.cfg.Store.SaveFollowers(ctx, rec, vs)
	if err != nil {
		c.unsaved = vs // written with the next flush's
		return err
	}
	c.unsaved = nil
	c.cfg.License.set(rec.ExpiresAt)
	c.mu.Lock()
	if c.looks != looks {
		// Run evaluated the hub after this flush looked at it: its
		// answer is the newer.
		rec.Safe, rec.Head, rec.Followers = c.own.Safe, c.own.Head, c.own.Followers
	}
	c.own = rec
	c.wakeLocked()
	c.mu.Unlock()
	c.merge(nodes)
	if c.cfg.Members != nil {
		c.cfg.Members(c.members(now))
	}
	if c.flushes++; c.flushes%pruneEvery == 0 {
		if _, err := c.cfg.Store.PruneFollowers(ctx, now.Add(-keepGone)); err != nil {
			c.log.Debug("inforce: pruning old records failed", "err", err)
		}
	}
	return nil
}

// Records of nodes and verifiers gone for keepGone are deleted, by every
// node every pruneEvery flushes (about a minute).
const (
	keepGone   = time.Hour
	pruneEvery = 60
)

// changedRecords returns the records of the followers the hub says
// changed since the last flush, with those a failed flush left unwritten
// (the newer record of a verifier in both).
func (c *Cluster) changedRecords(fs []feed.FollowerState) []store.VerifierRecord {
	out := make([]store.VerifierRecord, 0, len(c.unsaved)+len(fs))
	taken := make(map[string]bool, len(fs))
	for _, f := range fs {
		taken[f.ID] = true
		out = append(out, store.VerifierRecord{ID: f.ID, Name: f.Name, Host: f.Host, Version: f.Version, Node: c.cfg.NodeID,
			Position: f.Position, Ready: f.Ready, StaleAfter: f.StaleAfter, HeardAt: f.Heard})
	}
	for _, v := range c.unsaved {
		if !taken[v.ID] {
			out = append(out, v)
		}
	}
	return out
}
