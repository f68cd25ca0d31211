package feed

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// This file is the relay: one process per machine that follows the
// authority nodes as a named verifier does (a Client) and serves the same
// feed, from a RelayLog, to the verifiers on its machine (a Hub). A node
// then writes a revocation once per relay, not once per verifier. See
// docs/feed-protocol.md, "Relays", for why the node's confirmations stay
// exact through it:
//   - the hub grants no lease beyond the relay's own (licenseAt), and
//     none naming a head below the one the relay's own lease named;
//   - the relay reports upstream no further than every verifier behind it
//     holds (Reported: its hub's Safe), forwards every ask downstream and
//     reports again as its followers catch up (ReportIfDue);
//   - its hub takes a follower's staleness bound at most at the relay's
//     own (StaleAfterCap).

// DefaultRelayStaleAfter is RelayConfig.StaleAfter's default.
const DefaultRelayStaleAfter = 10 * time.Second

// DefaultRelayGrace is RelayConfig.Grace's default: the longest leeway
// (clock skew) a node lets verifiers allow, so that the relay sends an
// entry for as long as any node would.
const DefaultRelayGrace = 5 * time.Minute

// ErrRelayConfig is returned by Relay.Run when URLs or APIKey are missing.
var ErrRelayConfig = errors.New("feed: relay needs upstream URLs and an API key")

// RelayConfig configures a Relay. Zero values mean the defaults.
type RelayConfig struct {
	// URLs are the upstream nodes' base URLs (failover, as Client.URLs).
	URLs []string
	// APIKey is the feed key the relay follows the nodes with. Requests to
	// the relay must carry the same key as a bearer token: the verifiers of
	// the machine keep their key and change only the URL.
	APIKey string
	// Name is how the relay appears in the nodes' verifier listings.
	// Default "relay <Host>".
	Name, Host, Version string
	// StaleAfter is the relay's own staleness bound upstream: its leases
	// last at most this long, and so do those it grants (a follower naming
	// a longer bound is taken at this one). Default DefaultRelayStaleAfter.
	StaleAfter time.Duration
	// Grace is how long past its expiry an entry is kept and sent.
	// Default DefaultRelayGrace.
	Grace time.Duration
	// Heartbeat is the downstream hub's heartbeat period (HubConfig).
	Heartbeat  time.Duration
	HTTPClient *http.Client
	// Clock stamps leases, up- and downstream alike. Default the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Relay follows the feed upstream and serves it downstream. Make one with
// NewRelay, call Run, and serve its ServeHTTP. Safe for concurrent use.
type Relay struct {
	cfg     RelayConfig
	client  *Client
	keyHash [sha256.Size]byte
	log     *slog.Logger
	proxy   *relayProxy // what the relay passes to its node (relayproxy.go)
	refused keyRefusal  // ends downstream streams once the upstream refuses the key
	// askKick wakes aggregate when the client hears an ask.
	askKick chan struct{}
	// behind is aggregate's: the followers its last look found behind.
	behind lagging

	mu sync.Mutex
	// rlog is the log the client appends to; gen counts its replacements.
	rlog *RelayLog
	gen  uint64
	// cur is the hub serving rlog, nil until the client has caught up with
	// the log of rlog's epoch.
	cur     *relayHub
	swapped chan struct{} // closed (and replaced) when cur changes
}

// relayHub is a hub over one RelayLog, for one upstream epoch.
type relayHub struct {
	hub   *Hub
	epoch string
	stop  context.CancelFunc
	done  chan struct{}
	// lic are the latest snapshots of the relay's state that may license
	// the leases this hub grants (see licenseAt), by rising position.
	licMu sync.Mutex
	lic   []licence
}

// licence is the relay's lease end at a position: it licenses leases
// naming any head at or above pos.
type licence struct {
	pos int64
	end time.Time
}

// maxLicences bounds relayHub.lic: enough for the hub's head to trail the
// relay's position by as many state changes (a bulk revocation's events).
const maxLicences = 64

// note records st as a licence, if it is of the hub's epoch and synced.
// rh.licMu is held.
func (rh *relayHub) noteLocked(st State) {
	if st.Epoch != rh.epoch || !st.Synced || st.FreshUntil.IsZero() {
		return
	}
	if n := len(rh.lic); n > 0 {
		last := &rh.lic[n-1]
		if st.Position < last.pos || !st.FreshUntil.After(last.end) {
			return // nothing a later licence lacks
		}
		if st.Position == last.pos {
			last.end = st.FreshUntil
			return
		}
	}
	if len(rh.lic) == maxLicences {
		rh.lic = append(rh.lic[:0], rh.lic[1:]...)
	}
	rh.lic = append(rh.lic, licence{pos: st.Position, end: st.FreshUntil})
}

// note is noteLocked with the lock taken.
func (rh *relayHub) note(st State) {
	rh.licMu.Lock()
	defer rh.licMu.Unlock()
	rh.noteLocked(st)
}

// NewRelay returns a relay with cfg, defaults filled in.
func NewRelay(cfg RelayConfig) *Relay {
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultRelayStaleAfter
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultRelayGrace
	}
	if cfg.Name == "" {
		cfg.Name = strings.TrimSpace("relay " + cfg.Host)
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Relay{cfg: cfg, keyHash: sha256.Sum256([]byte(cfg.APIKey)), log: cfg.Logger,
		rlog: NewRelayLog(cfg.Grace, cfg.Clock), swapped: make(chan struct{}), askKick: make(chan struct{}, 1)}
	r.client = &Client{
		URLs: cfg.URLs, APIKey: cfg.APIKey, HTTPClient: cfg.HTTPClient, Clock: cfg.Clock, Logger: cfg.Logger,
		ApplyMany: r.applyMany, Reset: r.reset, Reported: r.reported, OnAsk: r.ask,
		Follower: &Follower{ID: NewFollowerID(), Name: cfg.Name, Host: cfg.Host, Version: cfg.Version, StaleAfter: cfg.StaleAfter},
	}
	r.proxy = r.newProxy()
	return r
}

// State returns the relay's upstream state: its client's.
func (r *Relay) State() State { return r.client.State() }

// Ready reports nil once the relay serves its followers and holds a lease
// upstream, else why not.
func (r *Relay) Ready() error {
	st := r.client.State()
	switch {
	case r.hub() == nil:
		return errors.New("the relay has not caught up with its upstream yet")
	case !st.Synced:
		return errors.New("the relay is catching up with its upstream")
	case !st.FreshUntil.After(r.cfg.Clock.Now()):
		return errors.New("the relay holds no lease from its upstream")
	}
	return nil
}

// Hub returns the hub serving the relay's followers, nil before the relay
// has caught up with its upstream.
func (r *Relay) Hub() *Hub {
	if rh := r.hub(); rh != nil {
		return rh.hub
	}
	return nil
}

func (r *Relay) hub() *relayHub {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// Run follows the upstream and serves the followers until ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	if len(r.cfg.URLs) == 0 || r.cfg.APIKey == "" {
		return ErrRelayConfig
	}
	clientDone := make(chan error, 1)
	go func() { clientDone <- r.client.Run(ctx) }()
	go r.aggregate(ctx)
	go r.watchRefusal(ctx)
	r.follow(ctx)
	err := <-clientDone
	r.mu.Lock()
	cur := r.cur
	r.mu.Unlock()
	if cur != nil {
		cur.stop()
	}
	return err
}

// WaitOpened is the client's WaitOpened: nil once the upstream accepted
// the relay, an error wrapping ErrRefused once every node refused its key.
func (r *Relay) WaitOpened(ctx context.Context) error { return r.client.WaitOpened(ctx) }

// applyMany is the client's ApplyMany: into the current log.
func (r *Relay) applyMany(es []revocation.Entry) (int, error) {
	r.mu.Lock()
	l := r.rlog
	r.mu.Unlock()
	return l.ApplyMany(es)
}

// follow moves the log's head with the client's position (a heartbeat
// moves it past pruned entries), starts a hub once the client has caught
// up, and notes the hub's licences (licenseAt), until ctx ends.
func (r *Relay) follow(ctx context.Context) {
	var last State
	for {
		err := r.client.WaitFor(ctx, func(st State) bool {
			return st.Position != last.Position || st.Synced != last.Synced || st.Epoch != last.Epoch ||
				!st.FreshUntil.Equal(last.FreshUntil)
		})
		if err != nil {
			return
		}
		r.mu.Lock()
		gen := r.gen
		r.mu.Unlock()
		last = r.client.State()
		r.mu.Lock()
		if r.gen == gen && last.Epoch != "" {
			// A reset since the state was read would make last another
			// log's position.
			r.rlog.Advance(last.Position)
			if r.cur == nil && last.Synced {
				r.startHubLocked(ctx, last.Epoch)
			}
			if r.cur != nil {
				r.cur.note(last)
			}
		}
		r.mu.Unlock()
	}
}

// startHubLocked starts a hub over the current log for epoch. r.mu is held.
func (r *Relay) startHubLocked(ctx context.Context, epoch string) {
	hctx, cancel := context.WithCancel(ctx)
	rh := &relayHub{epoch: epoch, done: make(chan struct{})}
	rh.hub = NewHub(r.rlog, HubConfig{Heartbeat: r.cfg.Heartbeat, Grace: r.cfg.Grace, Clock: r.cfg.Clock, Logger: r.log,
		Epoch: epoch, StaleAfterCap: r.cfg.StaleAfter})
	rh.hub.licenseAt = func(head int64) time.Time { return r.licenseAt(rh, head) }
	rh.stop = func() {
		cancel()
		<-rh.done
	}
	go func() {
		defer close(rh.done)
		_ = rh.hub.Run(hctx) // a hub runs once: never ErrHubRan
	}()
	r.setCurLocked(rh)
	r.log.Info("relay: serving the feed", "epoch", epoch, "position", r.client.State().Position)
}

// setCurLocked makes rh the hub serving the followers (nil: none) and
// wakes whoever waits on swapped. r.mu is held.
func (r *Relay) setCurLocked(rh *relayHub) {
	r.cur = rh
	close(r.swapped)
	r.swapped = make(chan struct{})
}

// licenseAt is how long the hub may let a lease run that names head: no
// longer than a lease of the relay's own whose head was at most head.
//
// The relay's FreshUntil comes from leases whose head it has applied, so
// a snapshot of its state at position P licenses leases naming any head
// >= P. The hub names its own head, which trails the relay's position by
// the time its tailer takes: a lease it grants then is licensed by the
// last snapshot taken at or below that head. Without this, a node that
// counts the relay safe at X because every lease it now holds names a
// head >= X would miss a verifier holding a lease, licensed by one of
// those, that names a head below X.
func (r *Relay) licenseAt(rh *relayHub, head int64) time.Time {
	rh.licMu.Lock()
	defer rh.licMu.Unlock()
	// The state is read under the lock: one read before a reset of the
	// log and noted after reset forgot the licences would license leases
	// in the new log with the relay's lease in the old one.
	rh.noteLocked(r.client.State())
	return rh.licenceLocked(head)
}

// licenceLocked returns the end of the latest licence at or below head
// (ends rise with positions), zero if none. rh.licMu is held.
func (rh *relayHub) licenceLocked(head int64) time.Time {
	for i := len(rh.lic) - 1; i >= 0; i-- {
		if rh.lic[i].pos <= head {
			return rh.lic[i].end
		}
	}
	return time.Time{}
}

// reset is the client's Reset: the upstream serves another log. Under
// another epoch the hub stops (its streams end, and their followers find
// the new epoch when they come back) and a new one starts once the client
// has caught up; under the same epoch (a log replaced in place) the hub
// stays and must see its head go back, which resets its followers.
func (r *Relay) reset() {
	st := r.client.State()
	r.mu.Lock()
	r.gen++
	cur := r.cur
	if cur == nil || cur.epoch != st.Epoch {
		r.rlog = NewRelayLog(r.cfg.Grace, r.cfg.Clock)
		r.setCurLocked(nil)
		r.mu.Unlock()
		if cur != nil {
			cur.stop()
		}
		return
	}
	cur.licMu.Lock()
	cur.lic = nil
	cur.licMu.Unlock()
	r.rlog.Clear()
	r.mu.Unlock()
	cur.hub.awaitReplaced()
}

// reported is the client's Reported: no further than every follower of
// the relay holds.
//
// Never above the hub's head either (Safe is at most that): a follower
// that comes later gets a record made at the hub's head then, and leases
// naming at least that head, so what the relay reported holds for it too.
// Before a hub serves the log, the log's head stands for it: the hub
// starts at the log's head, which only rises.
func (r *Relay) reported(st State) int64 {
	r.mu.Lock()
	rh, l := r.cur, r.rlog
	r.mu.Unlock()
	if rh == nil || rh.epoch != st.Epoch {
		head, _ := l.Head(context.Background()) // never fails
		return head
	}
	safe, _, _ := rh.hub.Safe()
	return safe
}

// ask is the client's OnAsk: the followers are asked too, and aggregate
// looks at them.
func (r *Relay) ask(pos int64) {
	if rh := r.hub(); rh != nil {
		rh.hub.Ask(pos)
	}
	select {
	case r.askKick <- struct{}{}:
	default:
	}
}

// aggregateSpacing is the least time between two looks at how far the
// followers are safe while an ask waits: the reports that answer an ask
// come together, a few hundred per relay within milliseconds, and a look
// at each would cost the relay a visit of every follower behind (see
// look) per report.
const aggregateSpacing = 2 * time.Millisecond

// aggregate has the client report once its followers' safe position has
// reached the position an upstream ask waits for (their reports raise it,
// as do a head and time: a follower gone silent past its bound), until
// ctx ends. With no ask waiting there is nothing to report, and it looks
// only once per staleness bound, which drops the records of followers
// silent past theirs.
func (r *Relay) aggregate(ctx context.Context) {
	sweep := r.cfg.Clock.Now().Add(r.cfg.StaleAfter)
	var lookedAt time.Time // wall clock: the spacing spares CPU, it decides nothing
	for {
		r.mu.Lock()
		rh, swapped := r.cur, r.swapped
		r.mu.Unlock()
		var (
			changed <-chan struct{}
			next    time.Time // zero: no timer, only a hub to come
			looked  bool
		)
		if rh != nil {
			changed = rh.hub.FollowersChanged()
			next, looked = r.look(rh, &sweep)
		} else {
			r.client.ReportIfDue() // the log's head stands for the hub's (reported)
		}
		if looked {
			lookedAt = time.Now()
		}
		if !r.waitChange(ctx, changed, swapped, next) || !sleep(ctx, aggregateSpacing-time.Since(lookedAt)) {
			return
		}
	}
}

// look works out whether rh's followers are safe up to the position an
// ask waits for, and has the client report once they are; it also drops
// the records of followers silent past their bound when the sweep is due
// (moving it on). It returns when to look again at the latest and whether
// it looked.
//
// A look visits only the followers the last one found behind, while any
// of them is: followers report rising positions, and time only makes more
// of them safe, so the ask cannot be answered before those have caught
// up. Once none is, a look visits every record, which finds those this
// missed (made since, with a floor below the ask; a follower that went
// back): it alone has the client report, and the report's position is
// the hub's Safe, which visits every record again.
func (r *Relay) look(rh *relayHub, sweep *time.Time) (time.Time, bool) {
	asked, waiting := r.client.askWaiting()
	now := r.cfg.Clock.Now()
	if !now.Before(*sweep) {
		*sweep = now.Add(r.cfg.StaleAfter)
		rh.hub.Safe()
	}
	if !waiting {
		return *sweep, false
	}
	b := &r.behind
	if b.hub == rh && b.asked == asked && len(b.rs) > 0 {
		var soonest time.Time
		if b.rs, soonest = rh.hub.behind(b.rs, asked); len(b.rs) > 0 {
			return earliest(soonest, *sweep), true
		}
	}
	rs, soonest := rh.hub.behind(nil, asked)
	*b = lagging{hub: rh, asked: asked, rs: rs}
	if len(rs) == 0 && rh.hub.Head() >= asked {
		r.client.ReportIfDue()
	}
	return earliest(soonest, *sweep), true
}

// lagging are the followers of hub found behind the position asked.
type lagging struct {
	hub   *relayHub
	asked int64
	rs    []*record
}

// earliest returns the earlier of t (zero: none) and u.
func earliest(t, u time.Time) time.Time {
	if !t.IsZero() && t.Before(u) {
		return t
	}
	return u
}

// waitChange waits for changed or swapped to close, or for next (zero:
// never), and reports false once ctx has ended.
func (r *Relay) waitChange(ctx context.Context, changed, swapped <-chan struct{}, next time.Time) bool {
	var wake <-chan time.Time
	if !next.IsZero() {
		t, c := clock.NewTimer(r.cfg.Clock, next.Sub(r.cfg.Clock.Now()))
		defer t.Stop()
		wake = c
	}
	select {
	case <-ctx.Done():
		return false
	case <-changed:
	case <-swapped:
	case <-r.askKick:
	case <-wake:
	}
	return true
}

// ServeHTTP serves the feed to the relay's followers: the stream, the
// report stream and position reports, for requests that carry the
// relay's key. What else a verifier fetches from its authority
// (discovery, the key set, introspection) goes to the node the relay
// follows, which answers it as if asked directly: a verifier changes only
// its authority URL. The relay refuses every other request (relayproxy.go).
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case Path, PositionPath, ReportsPath:
	default:
		r.proxy.ServeHTTP(w, req)
		return
	}
	if !r.authorized(w, req) {
		return
	}
	if req.URL.Path != PositionPath {
		// A stream, or a report stream: it ends if the upstream comes to
		// refuse the key (relayrefused.go). The hub serves it before this
		// returns (the relay's server detaches no stream).
		ctx, release := r.refused.bind(req.Context())
		defer release()
		req = req.WithContext(ctx)
	}
	if req.URL.Path == Path {
		r.awaitAhead(req) // before the checks below, which hold after it
	}
	h := r.Hub()
	switch {
	case h == nil:
		w.Header().Set("Retry-After", "1")
		httperr.Write(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the relay has not caught up with its upstream yet")
		return
	case req.URL.Path == Path && !h.vouching():
		// A stream's first heartbeat would make a follower that does not
		// name itself current: a relay without a lease opens none, as a
		// node that cannot read its log does not.
		w.Header().Set("Retry-After", "1")
		httperr.Write(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the relay holds no lease from its upstream")
		return
	}
	switch req.URL.Path {
	case Path:
		h.ServeHTTP(w, req)
	case PositionPath:
		h.ServePosition(w, req)
	case ReportsPath:
		h.ServeReports(w, req)
	}
}

// authorized checks the request's bearer key against the relay's own, and
// answers the refusal if it is not. A key the upstream refuses is refused
// here too: the followers then say why they cannot follow.
func (r *Relay) authorized(w http.ResponseWriter, req *http.Request) bool {
	key, ok := httpguard.Bearer(req)
	if !ok {
		httperr.Refuse(w, http.StatusUnauthorized, httperr.InvalidToken, "an API key is required (Authorization: Bearer)", true)
		return false
	}
	h := sha256.Sum256([]byte(key))
	if subtle.ConstantTimeCompare(h[:], r.keyHash[:]) != 1 {
		httperr.Refuse(w, http.StatusUnauthorized, httperr.InvalidToken, "this relay does not accept this API key", false)
		return false
	}
	if r.refusedUpstream(r.client.State()) {
		httperr.Refuse(w, http.StatusUnauthorized, httperr.InvalidToken, "the relay's upstream refuses this API key", false)
		return false
	}
	return true
}
