package feed

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Follower is how a verifier names itself to the authorities it follows.
type Follower struct {
	// ID is random per verifier process: 1–64 characters of A-Z a-z 0-9 _ -.
	ID string
	// Name is chosen by the verifier's operator; may be empty.
	Name    string
	Host    string
	Version string
	// StaleAfter is the verifier's staleness bound: it refuses tokens once
	// nothing has vouched for its state for this long.
	StaleAfter time.Duration
}

// Requester is who sends a feed request or a position report: the ID of
// the API key it authenticated with and its client address. The hub caps
// the follower records made per key and per address
// (HubConfig.FollowersPerKey, FollowersPerAddress), so that one key
// holder, or one address, cannot fill the registry with made-up verifiers
// and shut real ones out. Whoever authenticates requests in front of the
// hub says who it is (WithRequester); without that, every request counts
// as one anonymous requester.
type Requester struct {
	Key, Addr string
}

type requesterKey struct{}

// WithRequester returns ctx carrying q, for the Hub's handlers.
func WithRequester(ctx context.Context, q Requester) context.Context {
	return context.WithValue(ctx, requesterKey{}, q)
}

func requesterOf(ctx context.Context) Requester {
	q, _ := ctx.Value(requesterKey{}).(Requester)
	return q
}

// NewFollowerID returns a random verifier instance id (16 characters of
// the id alphabet).
func NewFollowerID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// FollowerState is a follower as a Hub sees it.
type FollowerState struct {
	Follower
	// Position is the log position it said it has applied.
	Position int64
	// Ready is what it said of itself: its state is current.
	Ready bool
	// Heard is when it last reported or opened a stream (the hub's clock).
	Heard time.Time
	// Streams is how many feed streams it has open on this hub.
	Streams int
}

// Limits on what a follower may say about itself.
const (
	MaxNameLen    = 128
	MaxHostLen    = 255
	MaxVersionLen = 64
)

// The staleness bound a follower may name: at least a millisecond (the
// wire carries milliseconds), at most a day. An authority refuses any other
// with 400, which no retry fixes: a verifier checks its bound against
// these (CheckStaleAfter) before it connects. The hub takes a bound above
// its own cap (HubConfig.StaleAfterCap) at the cap.
const (
	MinStaleAfter = time.Millisecond
	MaxStaleAfter = 24 * time.Hour
)

// CheckStaleAfter refuses a staleness bound an authority would refuse.
func CheckStaleAfter(d time.Duration) error {
	if d < MinStaleAfter || d > MaxStaleAfter {
		return fmt.Errorf("staleness bound %v out of range: it must be at least %v and at most %v", d, MinStaleAfter, MaxStaleAfter)
	}
	return nil
}

const (
	maxIDLen        = 64
	maxFollowers    = 100_000
	headerFollower  = "Tegata-Verifier"
	headerEpoch     = "Tegata-Epoch"
	headerToken     = "Tegata-Report-Token"
	historyMaxPoint = 1 << 16
)

var (
	errTooMany = errors.New("feed: too many verifiers follow this node")
	// errKeyCap and errAddrCap: the records made for one API key, or from
	// one client address, are at their cap (HubConfig.FollowersPerKey).
	errKeyCap  = errors.New("feed: too many verifiers registered with this API key on this node")
	errAddrCap = errors.New("feed: too many verifiers registered from this address on this node")
	// errClaimed: a stream or report names a verifier id this hub knows,
	// without the report token it gave that verifier: another process
	// claims its id (or forges its reports).
	errClaimed = errors.New("feed: this verifier id is in use by another verifier (report token missing or wrong)")
	// errUnknown: a report names a verifier this hub has no record of.
	// Only a stream makes a record: the verifier opens one again.
	errUnknown = errors.New("feed: this node has no record of this verifier; open a feed stream first")
)

// Error codes of the refusals a client acts on (in the JSON error body).
const (
	// codeUnknown (409): the client reconnects its stream, which makes a
	// new record.
	codeUnknown = "unknown_verifier"
	// codeIDTaken (409): the client takes a new id and reconnects.
	codeIDTaken = "verifier_id_taken"
	// codeTooMany (429): the caps per API key and address.
	codeTooMany = "too_many_verifiers"
	// codeConflict (409): a report names another epoch than the node's;
	// the client reconnects its stream, whose answer names the node's.
	codeConflict = "conflict"
)

// check validates what a follower says about itself.
func (f Follower) check() error {
	if n := len(f.ID); n == 0 || n > maxIDLen || !isIDText(f.ID) {
		return fmt.Errorf("verifier id must be 1-%d characters of A-Z a-z 0-9 _ -", maxIDLen)
	}
	for _, x := range []struct {
		name, v string
		max     int
	}{{"name", f.Name, MaxNameLen}, {"host", f.Host, MaxHostLen}, {"version", f.Version, MaxVersionLen}} {
		if len(x.v) > x.max || !Printable(x.v) {
			return fmt.Errorf("verifier %s must be at most %d bytes of printable UTF-8", x.name, x.max)
		}
	}
	if err := CheckStaleAfter(f.StaleAfter); err != nil {
		return fmt.Errorf("verifier %w", err)
	}
	return nil
}

func isIDText(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Printable reports whether s is valid UTF-8 made of printable characters
// only: what a follower may say of itself (name, host, version).
func Printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// header encodes f (and the epoch of the log the client follows) for the
// Tegata-Verifier request header of a feed request.
func (f Follower) header(epoch string) string {
	q := url.Values{"id": {f.ID}, "stale_after_ms": {strconv.FormatInt(ceilMS(f.StaleAfter), 10)}, hearsParam: {hearsReports}}
	for k, v := range map[string]string{"name": f.Name, "host": f.Host, "version": f.Version, "epoch": epoch} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

// ceilMS is d in whole milliseconds, rounded up: the hub must never take a
// follower's bound as shorter than it is, or it would count it as refusing
// tokens before it does.
func ceilMS(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// parseFollower decodes a Tegata-Verifier header. ok is false when the
// request carries none (a verifier that does not report).
func parseFollower(h string) (f Follower, epoch string, ok bool, err error) {
	if h == "" {
		return Follower{}, "", false, nil
	}
	q, err := url.ParseQuery(h)
	if err != nil {
		return Follower{}, "", true, fmt.Errorf("%s header: %w", headerFollower, err)
	}
	ms, err := strconv.ParseInt(q.Get("stale_after_ms"), 10, 64)
	if err != nil {
		return Follower{}, "", true, fmt.Errorf("%s header: stale_after_ms must be an integer", headerFollower)
	}
	f = Follower{ID: q.Get("id"), Name: q.Get("name"), Host: q.Get("host"), Version: q.Get("version"),
		StaleAfter: time.Duration(ms) * time.Millisecond}
	if err := f.check(); err != nil {
		return Follower{}, "", true, fmt.Errorf("%s header: %w", headerFollower, err)
	}
	return f, q.Get("epoch"), true, nil
}

// hearsParam is the field of the Tegata-Verifier header by which a
// follower says it counts the answers on its report stream as hearing
// from the hub (hearsReports): its stream then needs no periodic
// heartbeat while a report stream is open.
const (
	hearsParam   = "hears"
	hearsReports = "reports"
)

// hearsByReports reports whether a Tegata-Verifier header says the
// follower hears from the hub by its report answers.
func hearsByReports(h string) bool {
	q, err := url.ParseQuery(h)
	return err == nil && q.Get(hearsParam) == hearsReports
}

// record is one follower in the registry.
type record struct {
	FollowerState
	// floor is the hub's head when the record was created: every lease
	// this hub grants the follower afterwards names a head at least that
	// high, and a lease only vouches once the follower has applied its
	// head, so the follower holds every entry up to floor or refuses.
	floor int64
	// token is handed to the follower when the record is made; later
	// streams and reports for its id must carry it, so that one feed key
	// holder cannot report positions in another verifier's name.
	token string
	// owner made the record (its first stream): what counts against the
	// caps per API key and per address.
	owner Requester
	// reports counts its open report streams. A stream of the follower
	// reads it (Hub.reportStreams) to tell whether its heartbeats are
	// needed.
	reports reportCount
	// mu guards FollowerState's fields and dirty for a report taken
	// under the registry's read lock (followers.reportedFast); whoever
	// holds the registry's write lock needs it not.
	mu sync.Mutex
	// dirty says the record is on the registry's list of those to hand
	// out to be stored (followers.takeChanged).
	dirty bool
}

// live reports whether r was heard within its staleness bound at now. A
// record that is not may still be in the map until safe drops it; no
// count, list or answer includes it.
func (r *record) live(now time.Time) bool { return now.Sub(r.Heard) <= r.StaleAfter }

// followerLimits caps the registry; zero values mean no cap.
type followerLimits struct {
	perKey, perAddr int
	// staleCap is the longest staleness bound the hub takes a follower at.
	staleCap time.Duration
}

// followers is a Hub's registry of the verifiers following it and the
// history of its head, from which it works out how far all of them are
// safe (see safe). Guarded by its own lock, never held with the hub's.
//
// A position report, the frequent change (every follower reports within
// milliseconds of an ask), takes the read lock and its record's own mutex
// (reportedFast), so that thousands of reports arriving at once neither
// queue behind one another nor behind a scan (safe, pending, list, which
// take the read lock too). What adds, drops or renames records takes the
// write lock.
type followers struct {
	lim followerLimits
	// shared says that other nodes read the stored records (see
	// takeChanged); set before the registry is used.
	shared  bool
	mu      sync.RWMutex
	m       map[string]*record
	perKey  map[string]int // records by owner's API key
	perAddr map[string]int // records by owner's address
	hist    history
	changed atomic.Pointer[chan struct{}] // closed (and replaced) on every change
	// dirty are the records whose stored copy is out of date (see
	// markLocked), in the order they became so. Its own lock, taken
	// after a record's: reports mark records under the read lock.
	dirtyMu sync.Mutex
	dirty   []*record
	// looks counts the looks at the records (scanSafe, behind), for the
	// tests.
	looks atomic.Uint64
}

// markLocked puts r on the list of records whose stored copy is out of
// date, unless it is there already. The caller holds the registry's
// write lock, or its read lock and r.mu.
func (fs *followers) markLocked(r *record) {
	if r.dirty {
		return
	}
	r.dirty = true
	fs.dirtyMu.Lock()
	fs.dirty = append(fs.dirty, r)
	fs.dirtyMu.Unlock()
}

// takeChanged returns the followers whose stored record is out of date,
// each once until it is again: new, changed (identity, position,
// readiness, a stream opened), or, when other nodes read the records
// (shared), heard since the state last taken. On shared records that is
// every renewal (every half of the follower's bound), so that a listing
// on another node, which has only the stored copy, never finds a live
// verifier silent for more than half its bound and a flush: writing only
// renewals that came half the bound after the last write would skip the
// first renewal after a report that moved the record (an answered ask),
// leaving the stored copy up to a whole bound old. A single node lists
// its followers from memory, and stores no renewal that changes nothing.
// Those silent past their bound are left out. Reports mark the records as
// they come, so a node with thousands of followers looks only at those
// that changed.
func (fs *followers) takeChanged(now time.Time) []FollowerState {
	fs.dirtyMu.Lock()
	list := fs.dirty
	fs.dirty = nil
	fs.dirtyMu.Unlock()
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	out := make([]FollowerState, 0, len(list))
	for _, r := range list {
		r.mu.Lock()
		r.dirty = false
		if r.live(now) {
			out = append(out, r.FollowerState)
		}
		r.mu.Unlock()
	}
	return out
}

func newFollowers(lim followerLimits) *followers {
	fs := &followers{lim: lim, m: map[string]*record{}, perKey: map[string]int{}, perAddr: map[string]int{}}
	ch := make(chan struct{})
	fs.changed.Store(&ch)
	return fs
}

// wakeLocked closes the changed channel, replacing it; it needs no lock
// (the name says where it is called from).
func (fs *followers) wakeLocked() {
	ch := make(chan struct{})
	close(*fs.changed.Swap(&ch))
}

// advanced records that the hub's head reached head at now.
func (fs *followers) advanced(head int64, now time.Time) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.hist.add(now, head)
	fs.wakeLocked()
}

// replaced forgets everything: positions in the old log mean nothing in
// the new one.
func (fs *followers) replaced(head int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	clear(fs.m)
	clear(fs.perKey)
	clear(fs.perAddr)
	fs.dirtyMu.Lock()
	fs.dirty = nil
	fs.dirtyMu.Unlock()
	fs.hist = history{base: head}
	fs.wakeLocked()
}

// findLocked returns f's record, whose token token must match; nil if
// there is none.
func (fs *followers) findLocked(id, token string) (*record, error) {
	r := fs.m[id]
	if r != nil && subtle.ConstantTimeCompare([]byte(token), []byte(r.token)) != 1 {
		return nil, errClaimed
	}
	return r, nil
}

// createLocked makes a record for id, owned by q, with a new token and
// floor head, unless a cap forbids it.
func (fs *followers) createLocked(id string, q Requester, head int64) (*record, error) {
	switch {
	case len(fs.m) >= maxFollowers:
		return nil, errTooMany
	case fs.lim.perKey > 0 && fs.perKey[q.Key] >= fs.lim.perKey:
		return nil, errKeyCap
	case fs.lim.perAddr > 0 && fs.perAddr[q.Addr] >= fs.lim.perAddr:
		return nil, errAddrCap
	}
	r := &record{floor: head, token: randomToken(), owner: q}
	fs.m[id] = r
	fs.perKey[q.Key]++
	fs.perAddr[q.Addr]++
	return r, nil
}

// deleteLocked drops id's record.
func (fs *followers) deleteLocked(id string) {
	r := fs.m[id]
	if r == nil {
		return
	}
	delete(fs.m, id)
	for _, c := range []struct {
		m map[string]int
		k string
	}{{fs.perKey, r.owner.Key}, {fs.perAddr, r.owner.Addr}} {
		if c.m[c.k]--; c.m[c.k] <= 0 {
			delete(c.m, c.k)
		}
	}
}

// heardLocked updates what f says about itself, its bound taken at the
// hub's cap, and marks it heard at now.
func (fs *followers) heardLocked(r *record, f Follower, now time.Time) {
	if fs.lim.staleCap > 0 {
		f.StaleAfter = min(f.StaleAfter, fs.lim.staleCap)
	}
	r.Follower, r.Heard = f, now
	fs.hist.sawStaleAfter(f.StaleAfter)
}

// connected registers a stream opened by f (on behalf of q), positioned
// after after, making f's record if it has none, and returns the report
// token of the record.
func (fs *followers) connected(f Follower, token string, q Requester, after, head int64, now time.Time) (string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	r, err := fs.findLocked(f.ID, token)
	if err == nil && r == nil {
		r, err = fs.createLocked(f.ID, q, head)
	}
	if err != nil {
		return "", err
	}
	fs.heardLocked(r, f, now)
	r.Position, r.Streams = after, r.Streams+1
	fs.markLocked(r)
	fs.wakeLocked()
	return r.token, nil
}

// disconnected notes that one of id's streams ended. The record stays
// until the follower has been silent past its staleness bound: a verifier
// that lost its stream may still hold a lease.
func (fs *followers) disconnected(id string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if r := fs.m[id]; r != nil && r.Streams > 0 {
		r.Streams--
		fs.wakeLocked()
	}
}

// maxReportStreams caps the report streams open for one record: one per
// feed stream, and the one of a stream just replaced that its client has
// not closed yet.
const maxReportStreams = 2

// errReportStreams: a record has its maximum of report streams open.
var errReportStreams = errors.New("feed: this verifier has report streams open on this node already")

// openReports registers a report stream for id's record, which must exist
// and carry token, and returns the func that unregisters it.
func (fs *followers) openReports(id, token string) (func(), error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	r, err := fs.findLocked(id, token)
	switch {
	case err != nil:
		return nil, err
	case r == nil:
		return nil, errUnknown
	case r.reports.n.Load() >= maxReportStreams:
		return nil, errReportStreams
	}
	r.reports.n.Add(1)
	return r.reports.closed, nil
}

// reportCount counts a record's open report streams. The follower's feed
// streams, which send it no heartbeat while one is open, wait on it (open)
// rather than on the hub's ticks, to hear at once when the last one ends.
type reportCount struct {
	n    atomic.Int32
	mu   sync.Mutex
	none chan struct{} // closed (and replaced) when n drops to 0
}

// closed notes that a report stream ended.
func (c *reportCount) closed() {
	if c.n.Add(-1) > 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.none != nil {
		close(c.none)
		c.none = nil
	}
}

// open reports whether a report stream is open, with a channel closed
// once none is (nil when none is now).
func (c *reportCount) open() (<-chan struct{}, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Read after the channel is in place: a stream that ends from here on
	// closes it.
	if c.none == nil {
		c.none = make(chan struct{})
	}
	if c.n.Load() == 0 {
		return nil, false
	}
	return c.none, true
}

// reportStreams returns the count of report streams open for id's
// record (nil if there is none): a stream of that follower reads it to
// tell whether the follower hears from the hub on a report stream.
func (fs *followers) reportStreams(id string) *reportCount {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	if r := fs.m[id]; r != nil {
		return &r.reports
	}
	return nil
}

// reported records a position report of f, whose record a stream made,
// and returns that record's report token and the staleness bound the hub
// takes f at (its own, or the hub's cap).
func (fs *followers) reported(f Follower, token string, pos int64, ready bool, now time.Time) (string, time.Duration, error) {
	if tok, d, ok, err := fs.reportedFast(f, token, pos, ready, now); ok || err != nil {
		return tok, d, err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	r, err := fs.findLocked(f.ID, token)
	if err == nil && r == nil {
		err = errUnknown
	}
	if err != nil {
		return "", 0, err
	}
	fs.heardLocked(r, f, now)
	r.Position, r.Ready = pos, ready
	fs.markLocked(r)
	fs.wakeLocked()
	return r.token, r.StaleAfter, nil
}

// reportedFast records a report under the read lock when it changes only
// the follower's position, readiness and the time it was heard; ok is
// false when it says something else of itself (reported then takes the
// write lock).
func (fs *followers) reportedFast(f Follower, token string, pos int64, ready bool, now time.Time) (string, time.Duration, bool, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	r, err := fs.findLocked(f.ID, token)
	if err == nil && r == nil {
		err = errUnknown
	}
	if err != nil {
		return "", 0, false, err
	}
	if fs.lim.staleCap > 0 {
		f.StaleAfter = min(f.StaleAfter, fs.lim.staleCap)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Follower != f {
		return "", 0, false, nil
	}
	moved := r.Position != pos || r.Ready != ready
	r.Heard, r.Position, r.Ready = now, pos, ready
	if moved || fs.shared {
		fs.markLocked(r)
	}
	if moved {
		// A renewal that says nothing new wakes nobody: a waiter needs a
		// follower's position to move (time alone is what Safe's next
		// instant covers), and renewals are most reports.
		fs.wakeLocked()
	}
	return r.token, r.StaleAfter, true, nil
}

// safe returns the highest position X such that every verifier that
// follows this hub holds every entry up to X or refuses every token, and
// the earliest instant after now at which time alone may raise it (zero
// if none). head is the hub's head, which bounds it: leases granted from
// now on name at least the head, so nothing above it can be vouched for.
//
// A follower f is safe up to X when any of these holds:
//   - it said it applied X (Position >= X);
//   - X <= its floor (every lease this hub granted it names a head >= X);
//   - it has been silent for longer than its staleness bound: every lease
//     this hub granted it has run out, since a lease lasts at most
//     StaleAfter from the report that earned it;
//   - the hub's head passed X more than StaleAfter ago: leases granted
//     before that named a lower head and have run out since, and leases
//     granted after it vouch only once X is applied.
//
// Followers silent past their bound are dropped.
func (fs *followers) safe(head int64, now time.Time) (int64, time.Time) {
	safe, next, dead := fs.scanSafe(head, now)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, id := range dead {
		if r := fs.m[id]; r != nil && !r.live(now) {
			fs.deleteLocked(id)
		}
	}
	fs.hist.prune(now)
	return safe, next
}

// scanSafe is safe's look at every record, under the read lock: reports
// go on meanwhile. It returns the records silent past their bound, which
// safe drops.
func (fs *followers) scanSafe(head int64, now time.Time) (safe int64, next time.Time, dead []string) {
	fs.looks.Add(1)
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	safe = head
	// Followers mostly share one bound and, once asked, one position:
	// the history's answers for the last ones are kept.
	var hs historyScan
	for id, r := range fs.m {
		live, x, heard, stale := fs.safeUpTo(r, now, &hs)
		if !live {
			dead = append(dead, id)
			continue
		}
		if x >= head {
			continue
		}
		safe = min(safe, x)
		next = fs.raisedAt(next, &hs, x, heard, stale, now)
	}
	return safe, next, dead
}

// safeUpTo returns whether r is live at now and the highest position it
// is safe up to by the rules of safe (its report, its floor, the head its
// bound ago), with when it was last heard and its bound. fs.mu is held.
func (fs *followers) safeUpTo(r *record, now time.Time, hs *historyScan) (live bool, x int64, heard time.Time, stale time.Duration) {
	r.mu.Lock()
	live, pos, heard, stale := r.live(now), r.Position, r.Heard, r.StaleAfter
	r.mu.Unlock()
	return live, max(pos, r.floor, hs.at(&fs.hist, now, stale)), heard, stale
}

// raisedAt returns the earlier of next (zero: none) and the first instant
// after now at which time alone makes a follower safe beyond x: its bound
// past when it was last heard, or past when the head passed x. fs.mu is
// held.
func (fs *followers) raisedAt(next time.Time, hs *historyScan, x int64, heard time.Time, stale time.Duration, now time.Time) time.Time {
	for _, t := range [2]time.Time{heard.Add(stale + time.Nanosecond), hs.passedPlus(&fs.hist, x, stale)} {
		if !t.IsZero() && t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// behind returns the live records among rs (every record when rs is nil)
// not yet safe up to x at now (see safe), and the earliest instant after
// now at which time alone may make one of them so (zero if none). Records
// of rs no longer in the registry are left out: dropped (silent past
// their bound) or of a replaced log. It looks at rs alone: the records
// behind at one look are the only ones a later look need visit again,
// but for those made since (see Relay.look).
func (fs *followers) behind(rs []*record, x int64, now time.Time) ([]*record, time.Time) {
	fs.looks.Add(1)
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	var (
		out  []*record
		next time.Time
		hs   historyScan
	)
	visit := func(r *record) {
		live, y, heard, stale := fs.safeUpTo(r, now, &hs)
		if !live || y >= x {
			return
		}
		out = append(out, r)
		next = fs.raisedAt(next, &hs, y, heard, stale, now)
	}
	if rs == nil {
		for _, r := range fs.m {
			visit(r)
		}
		return out, next
	}
	for _, r := range rs {
		if r.ID != "" && fs.m[r.ID] == r {
			visit(r)
		}
	}
	return out, next
}

// historyScan remembers the last answers of history.at and passed during
// one scan, in which the history does not change.
type historyScan struct {
	stale      time.Duration
	atHead     int64
	atOK       bool
	x          int64
	passedAt   time.Time
	passedOK   bool
	passedSeen bool
}

// at is h.at(now - stale).
func (s *historyScan) at(h *history, now time.Time, stale time.Duration) int64 {
	if !s.atOK || s.stale != stale {
		s.stale, s.atHead, s.atOK = stale, h.at(now.Add(-stale)), true
	}
	return s.atHead
}

// passed is h.passed(x).
func (s *historyScan) passed(h *history, x int64) (time.Time, bool) {
	if !s.passedSeen || s.x != x {
		s.passedAt, s.passedOK = h.passed(x)
		s.x, s.passedSeen = x, true
	}
	return s.passedAt, s.passedOK
}

// passedPlus is when time alone makes x safe by the head's history for a
// follower with bound stale (zero if the head has not passed x).
func (s *historyScan) passedPlus(h *history, x int64, stale time.Duration) time.Time {
	t, ok := s.passed(h, x)
	if !ok {
		return time.Time{}
	}
	return t.Add(stale + time.Nanosecond)
}

// state returns r's state, taken under its mutex; the registry's read
// lock is held.
func (r *record) state() FollowerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.FollowerState
}

// pending returns up to limit of the followers not yet safe up to x (see
// safe), and how many there are in all.
func (fs *followers) pending(x int64, limit int, now time.Time) ([]FollowerState, int) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	var out []FollowerState
	n := 0
	for _, r := range fs.m {
		st := r.state()
		if now.Sub(st.Heard) > st.StaleAfter || max(st.Position, r.floor, fs.hist.at(now.Add(-st.StaleAfter))) >= x {
			continue
		}
		if n++; len(out) < limit {
			out = append(out, st)
		}
	}
	return out, n
}

// list returns the followers heard within their staleness bound.
func (fs *followers) list(now time.Time) []FollowerState {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	out := make([]FollowerState, 0, len(fs.m))
	for _, r := range fs.m {
		if st := r.state(); now.Sub(st.Heard) <= st.StaleAfter {
			out = append(out, st)
		}
	}
	return out
}

// count returns how many followers list would return, and the longest
// staleness bound among them.
func (fs *followers) count(now time.Time) (n int, longest time.Duration) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	for _, r := range fs.m {
		r.mu.Lock()
		if r.live(now) {
			n++
			longest = max(longest, r.StaleAfter)
		}
		r.mu.Unlock()
	}
	return n, longest
}

// history remembers when the hub's head passed each value, for the last
// staleness bound's worth of time: enough to tell which leases have run
// out. Points may be thinned out; what remains only ever understates how
// early a head was reached, which errs towards "not yet safe".
type history struct {
	base     int64 // the head at the hub's start: no lease of this hub names less
	pts      []point
	maxStale time.Duration // the longest staleness bound seen: how far back queries go
}

type point struct {
	t    time.Time
	head int64
}

func (h *history) sawStaleAfter(d time.Duration) { h.maxStale = max(h.maxStale, d) }

func (h *history) add(t time.Time, head int64) {
	if n := len(h.pts); n > 0 && head <= h.pts[n-1].head {
		return
	}
	if len(h.pts) >= historyMaxPoint {
		h.thin()
	}
	h.pts = append(h.pts, point{t, head})
}

// thin drops every other point but the last.
func (h *history) thin() {
	kept := h.pts[:0]
	for i, p := range h.pts {
		if i%2 == 1 || i == len(h.pts)-1 {
			kept = append(kept, p)
		}
	}
	h.pts = kept
}

// at returns the head the hub had reached at t (a lower bound). Points
// are in time and head order, so both lookups are binary searches: safe
// makes one per follower.
func (h *history) at(t time.Time) int64 {
	i := sort.Search(len(h.pts), func(i int) bool { return h.pts[i].t.After(t) })
	if i == 0 {
		return h.base
	}
	return max(h.base, h.pts[i-1].head)
}

// passed returns when the head first went above x, if it has.
func (h *history) passed(x int64) (time.Time, bool) {
	i := sort.Search(len(h.pts), func(i int) bool { return h.pts[i].head > x })
	if i == len(h.pts) {
		return time.Time{}, false
	}
	return h.pts[i].t, true
}

// prune drops points no query needs any more: queries look back at most
// the longest staleness bound seen. The base stays the head at the hub's
// start, so a query further back than the points kept (a bound longer than
// any seen before) gets that, which is true of any instant.
func (h *history) prune(now time.Time) {
	cut := now.Add(-h.maxStale - time.Second)
	i := 0
	for i < len(h.pts)-1 && h.pts[i+1].t.Before(cut) {
		i++
	}
	if i > 0 {
		h.pts = append(h.pts[:0], h.pts[i:]...)
	}
}
