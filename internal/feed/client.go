package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/revocation"
)

var (
	// ErrClientConfig is returned by Client.Run when URLs, or both Apply
	// and ApplyMany, are missing.
	ErrClientConfig = errors.New("feed: client needs URLs and Apply")
	// ErrClientRunning is returned by Client.Run when the client is already
	// running.
	ErrClientRunning = errors.New("feed: client already running")
	// ErrIdle ends a stream on which nothing was heard for IdleTimeout.
	ErrIdle = errors.New("feed: stream idle")
	// ErrStatus is wrapped by the error of a response other than 200.
	ErrStatus = errors.New("feed: unexpected response")
	// ErrRefused is wrapped, instead of ErrStatus, by the error of a 401 or 403
	// answer: the authority does not accept the API key for the feed. It does
	// not go away by retrying.
	ErrRefused = errors.New("feed: API key refused")
	// ErrInvalid is wrapped, instead of ErrStatus, by the error of a 400
	// answer to a stream: the authority refuses the request itself (such
	// as a staleness bound out of range). Like ErrRefused, it does not go
	// away by retrying.
	ErrInvalid = errors.New("feed: request refused as invalid")
)

// KeyRoleHeader is the response header in which the authority names the
// role of the API key a request was authenticated with ("admin", "gate" or
// "feed"), so that a verifier can warn when it holds more than it needs (a
// web gate's verifier holds a gate key by design; any other verifier needs
// only feed).
const KeyRoleHeader = "Tegata-Key-Role"

// Client follows the feed of one or more authorities and applies every
// entry, in seq order, exactly as far as it has heard. Set the fields, then
// call Run; do not change them while it runs. Zero values mean the
// defaults.
type Client struct {
	// URLs are the authorities' base URLs; on any error the client moves to
	// the next one, round robin.
	URLs []string
	// APIKey is sent as a bearer token, until SetAPIKey replaces it.
	APIKey string
	// HTTPClient defaults to a client with timeouts for dialing, TLS and
	// response headers but none overall, since a stream is long.
	HTTPClient *http.Client
	// Apply records an entry; it is called in seq order, from Run's
	// goroutine. An error (such as revocation.ErrFull) pauses the feed: the
	// client drops the connection and later resumes from the last entry
	// applied, so nothing is skipped.
	Apply func(revocation.Entry) error
	// ApplyMany, when set, records the entries of one event in place of
	// Apply, all at once (a bulk revocation arrives thousands at a time:
	// see revocation.Set.ApplyMany), with the same contract: as if Apply
	// were called on each in turn, it returns how many it recorded before
	// the first it refuses, and that error. Either of Apply and ApplyMany
	// is required. Unlike Apply's, the keys of the entries it gets
	// (Session, Subject) are the bytes of the event as read, which the
	// client reuses once ApplyMany returns: it must not keep one beyond the
	// call without copying it (strings.Clone). A revocation.Set keeps
	// hashes, or copies.
	ApplyMany func([]revocation.Entry) (int, error)
	// Grow, when set, is told that about n more entries are on their way,
	// of the kind of the first entry of the event that said so: a
	// revocations event whose head lies beyond its entries (a bulk
	// revocation the node reads from its log in parts). The consumer can
	// then make room for them all at once (revocation.Set.Grow) instead of
	// as they come. It is a hint, at most maxExpect, called from Run's
	// goroutine before the event's entries are applied.
	Grow func(kind revocation.Kind, n int)
	// Reset clears everything applied so far; it is called when the server
	// says the client followed another log, after State has turned
	// unsynced (Synced false, Position 0), so a consumer that judges
	// freshness by State never sees its cleared state called current.
	// Apply then starts over from the first entry.
	Reset func()
	// Clock stamps State.LastHeard and FreshUntil and runs the lease
	// renewals; nil: the wall clock. Waits on an authority (IdleTimeout,
	// report timeouts, the backoff between attempts) stay on the wall
	// clock, as connection deadlines do: a stopped test clock must not
	// stop the client from reaching its peer.
	Clock clock.Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// RetryMin and RetryMax bound the jittered exponential backoff between
	// connections. Defaults 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// IdleTimeout drops a stream on which nothing was heard for this long
	// (a half-open connection). Heartbeats come every second, or every
	// quarter of Follower.StaleAfter (at most 5s) on a named stream, and
	// not at all while the client's report stream is open: the answers to
	// its lease renewals, every half of StaleAfter, count as hearing from
	// the node then. Default: with a Follower, 3/4 of its StaleAfter (at
	// least 2s), so that a renewal's answer may take a quarter of the
	// bound to come and a silent node is left with a quarter of the lease
	// to spare; without, 15s. With a Follower, keep a value set here at
	// least that.
	IdleTimeout time.Duration
	// Follower, when set, names the client to the authorities it follows
	// and turns on position reports, which the client's freshness then
	// rests on: see State.FreshUntil and client_report.go. Its StaleAfter
	// is required.
	Follower *Follower
	// Ready, when set, is reported as the client's own view of whether its
	// state is complete, its lease aside (see readyOf). Nil: Synced.
	Ready func() bool
	// Issuer, when set, is the issuer a `nodes` event must name to be
	// followed (see nodes.go).
	Issuer string
	// OnNodes, when set, is called from Run's goroutine with the URLs the
	// client follows (URLs, then the nodes the cluster advertises) each
	// time they change.
	OnNodes func(urls []string)
	// Reported, when set, returns the position the client reports to its
	// authorities in place of State.Position, which it must not exceed: a
	// relay reports no further than its own followers hold (relay.go).
	// Call ReportIfDue when its answer may have risen. Nil: Position.
	Reported func(State) int64
	// OnAsk, when set, is called from Run's goroutine with the position of
	// every ask the client hears, before it answers it (and once
	// askWaiting says it waits).
	OnAsk func(pos int64)

	running atomic.Bool
	// reporting is the current stream's reporter, nil between streams and
	// without a Follower (ReportIfDue).
	reporting atomic.Pointer[reporter]
	key       atomic.Pointer[string] // set by SetAPIKey
	mu        sync.Mutex
	st        State
	leases    []lease           // acknowledged reports whose head is not yet applied
	tokens    map[string]string // report token per authority base URL
	// nodes are the URLs the cluster advertises beyond URLs (nodes.go).
	nodes   []string
	changed chan struct{} // closed on state changes; nil until a waiter needs it
	// endStream ends the current stream (Reconnect); nil between streams.
	endStream context.CancelCauseFunc
}

// State is where a Client stands.
type State struct {
	// Position is the last seq applied or acknowledged by a heartbeat: the
	// client has every live entry up to it, and resumes after it.
	Position int64
	// Head is the log's head as last heard from the server.
	Head int64
	// LastHeard is when the last event of any kind arrived; a verifier
	// judges staleness by it.
	LastHeard time.Time
	// Synced is true once a heartbeat has shown the client holds every
	// entry up to the head. It stays true across reconnects (the applied
	// entries remain valid; LastHeard tells how current they are) and turns
	// false on a reset until the next heartbeat.
	Synced bool
	// Source is the base URL of the current or last connection.
	Source string
	// Connected is true while a stream is open.
	Connected bool
	// Err is the last error, cleared by the next heartbeat.
	Err string
	// Epoch is the epoch of the log followed, as the server last said
	// ("" until a server that has one was heard).
	Epoch string
	// ID is the id the client names itself by: Follower.ID, until an
	// authority says another verifier holds that id; then a new random
	// one. Empty without a Follower.
	ID string
	// FreshUntil is the instant until which the client's entries are
	// vouched for; zero without a Follower. It is the latest lease earned:
	// a report's send time plus the lease the server granted, counted only
	// once the client has applied the head the server named.
	FreshUntil time.Time
	// KeyRole is the role the authority gave the API key on the last
	// connection (KeyRoleHeader), if it said.
	KeyRole string
	// Opened is true once any connection has been accepted (200).
	Opened bool
	// Refusals counts the consecutive connections answered 400, 401 or
	// 403; an accepted connection resets it.
	Refusals int
	// RefusedErr is the error of the last refusal.
	RefusedErr error
}

// State returns a snapshot of the client's state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// WaitSynced blocks until the client is synced or ctx is done.
func (c *Client) WaitSynced(ctx context.Context) error {
	_, err := c.wait(ctx, func(st State) bool { return st.Synced })
	return err
}

// WaitPosition blocks until the client has applied every live entry up to
// seq (State.Position >= seq) or ctx is done.
func (c *Client) WaitPosition(ctx context.Context, seq int64) error {
	_, err := c.wait(ctx, func(st State) bool { return st.Position >= seq })
	return err
}

// WaitFor blocks until ok holds or ctx is done. ok is asked at once and
// again at every change of the state, so it may judge more than the state
// it is given (a consumer's own view of being current, say), as long as
// what it judges changes only with the state.
func (c *Client) WaitFor(ctx context.Context, ok func(State) bool) error {
	_, err := c.wait(ctx, ok)
	return err
}

// WaitOpened blocks until a connection has been accepted (nil), every
// authority in URLs has refused the API key in a row (an error wrapping
// ErrRefused), or ctx is done (ctx's error, joined with the last connection
// error if there was one). It is how a verifier tells, at start, a key that
// will never work from an authority that is not up yet.
func (c *Client) WaitOpened(ctx context.Context) error {
	st, err := c.wait(ctx, func(st State) bool {
		return st.Opened || st.Refusals >= len(c.URLs) && st.RefusedErr != nil
	})
	switch {
	case err != nil && st.Err != "":
		return fmt.Errorf("%w (last error: %s)", err, st.Err)
	case err != nil:
		return err
	case st.Opened:
		return nil
	}
	return st.RefusedErr
}

// wait blocks until ok holds of the state or ctx is done, and returns the
// state it last looked at. Every state change wakes it (update).
func (c *Client) wait(ctx context.Context, ok func(State) bool) (State, error) {
	for {
		c.mu.Lock()
		st := c.st
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch := c.changed
		c.mu.Unlock()
		if ok(st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// update changes the state under the lock and wakes waiters.
func (c *Client) update(f func(*State)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.st)
	c.renewLocked()
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// Run follows the feed until ctx is done, then returns nil. It survives
// every transient error by reconnecting with backoff; it returns an error
// only when misconfigured.
func (c *Client) Run(ctx context.Context) error {
	if len(c.URLs) == 0 || c.Apply == nil && c.ApplyMany == nil {
		return ErrClientConfig
	}
	if !c.running.CompareAndSwap(false, true) {
		return ErrClientRunning
	}
	defer c.running.Store(false)
	if c.Follower != nil {
		c.update(func(st *State) {
			if st.ID == "" {
				st.ID = c.Follower.ID
			}
		})
	}
	s := c.follower()
	failures := 0
	for i := 0; ; i++ {
		urls := c.urls()
		base := urls[i%len(urls)]
		healthy, err := s.stream(ctx, base)
		refused, refusals := errors.Is(err, ErrRefused) || errors.Is(err, ErrInvalid), 0
		if (refused || errors.Is(err, errForeignNode)) && c.dropNode(base, err, s.log) {
			refused = false // an advertised node is not one of the verifier's own authorities
		}
		c.update(func(st *State) {
			st.Connected = false
			if err != nil && ctx.Err() == nil {
				st.Err = err.Error()
			}
			if refused {
				st.Refusals++
				st.RefusedErr = err
			}
			refusals = st.Refusals
		})
		if ctx.Err() != nil {
			return nil
		}
		if healthy {
			failures = 0
		} else {
			failures++
		}
		if refused {
			s.log.Error(refusedMessage(err), "url", base, "err", err)
			if refusals >= len(c.URLs) {
				// Every authority refused: retrying will not fix the key.
				// Keep trying (a node may be behind on a key just made) at
				// the slowest pace; the verifier goes stale and says why.
				failures = max(failures, 64)
			}
		} else {
			s.log.Log(ctx, endedLevel(healthy, err), "feed: stream ended", "url", base, "err", err, "failures", failures)
		}
		if !sleep(ctx, s.wait(failures, err)) {
			return nil
		}
	}
}

func refusedMessage(err error) string {
	if errors.Is(err, ErrInvalid) {
		return "feed: the authority refused the feed request as invalid; check the verifier's configuration"
	}
	return "feed: the authority refused the API key; it needs a live key with the feed role"
}

// endedLevel is how loud the end of a stream is logged: Info when the
// authority ended a healthy stream cleanly (it does after a maximum age,
// and at shutdown; the client resumes at once) or the client was asked to
// reconnect (Reconnect, SetAPIKey), Warn otherwise.
func endedLevel(healthy bool, err error) slog.Level {
	if healthy && errors.Is(err, io.EOF) || errors.Is(err, errReconnect) {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

// follower holds what one Run needs, with defaults filled in.
type follower struct {
	c                  *Client
	http               *http.Client
	clock              clock.Clock
	now                func() time.Time
	log                *slog.Logger
	retryMin, retryMax time.Duration
	idle               time.Duration
	applyMany          func([]revocation.Entry) (int, error) // ApplyMany, or Apply one by one
	// expected is the highest head an event said, whose entries Grow was
	// told of.
	expected int64
	runnable [1]metrics.Sample // goroutines waiting to run (yield)
	burst    bool              // the last event held entries (yield)
	// rep is the stream's reporter, nil when the client does not report.
	// Only Run's goroutine sets it.
	rep *reporter
}

func (c *Client) follower() *follower {
	s := &follower{c: c, http: c.HTTPClient, clock: clock.Or(c.Clock), log: c.Logger,
		retryMin: c.RetryMin, retryMax: c.RetryMax, idle: c.IdleTimeout, applyMany: c.ApplyMany}
	s.now = s.clock.Now
	if s.applyMany == nil {
		s.applyMany = func(es []revocation.Entry) (int, error) {
			for i, e := range es {
				if err := c.Apply(e); err != nil {
					return i, err
				}
			}
			return len(es), nil
		}
	}
	if s.http == nil {
		s.http = defaultHTTPClient()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.retryMin <= 0 {
		s.retryMin = 100 * time.Millisecond
	}
	if s.retryMax <= 0 {
		s.retryMax = 5 * time.Second
	}
	s.retryMax = max(s.retryMax, s.retryMin)
	if s.idle <= 0 {
		s.idle = 15 * time.Second
		if c.Follower != nil {
			s.idle = max(c.Follower.StaleAfter*3/4, 2*time.Second)
		}
	}
	return s
}

func defaultHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   2,
	}}
}

func (s *follower) backoff(failures int) time.Duration {
	return Backoff(failures, s.retryMin, s.retryMax)
}

// wait is how long to wait before the next stream after failures
// consecutive failures, the last ending with err: the backoff, or longer
// when the node said when to come back (Retry-After on a 429: the stream
// caps are full, and a follower retrying sooner only adds to the storm).
// A Retry-After wait is jittered up to half again: the followers a node
// turned away in one storm, told the same seconds, would otherwise come
// back together.
func (s *follower) wait(failures int, err error) time.Duration {
	d := s.backoff(failures)
	var later *retryLater
	if errors.As(err, &later) {
		d = max(d, later.after+rand.N(later.after/2+1))
	}
	return d
}

// retryLater is the error of an answer that says when to try again.
type retryLater struct {
	err   error
	after time.Duration
}

func (e *retryLater) Error() string { return e.err.Error() }
func (e *retryLater) Unwrap() error { return e.err }

// maxRetryAfter caps the wait a 429's Retry-After asks for. A node asks
// for a few seconds (5 past its stream caps); a proxy in front of it may
// ask for an hour (a maintenance page), which would keep the verifier
// stale that long though another node, or the same one a minute later,
// would take its stream. Past the cap the follower asks again, and at
// worst is turned away again. tegata's Node follower (js/src/feed.js)
// caps it the same.
const maxRetryAfter = 30 * time.Second

// retryAfter reads a Retry-After header's delay in whole seconds (the
// form a node sends), at most maxRetryAfter; 0 for none or another form.
func retryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if errors.Is(err, strconv.ErrRange) && n > 0 {
		err = nil // more seconds than an int holds: the cap
	}
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n), maxRetryAfter/time.Second) * time.Second
}

// Backoff returns the jittered wait before the next attempt after failures
// consecutive failures, in [d/2, d] with d = lo doubled per failure after
// the first, up to hi. The feed and a verifier's start-up retry both use it.
func Backoff(failures int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < failures && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		// Most reports start more than reportSpacing after the last: no
		// timer for them.
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// stream runs one connection. healthy reports whether it got as far as a
// heartbeat without an Apply error, so the backoff starts over.
func (s *follower) stream(ctx context.Context, base string) (healthy bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.c.mu.Lock()
	s.c.endStream = cancel
	s.c.mu.Unlock()
	defer func() {
		s.c.mu.Lock()
		s.c.endStream = nil
		s.c.mu.Unlock()
	}()
	// The idle timer also bounds the wait for response headers, whatever
	// the HTTP client's own timeouts.
	idle := time.AfterFunc(s.idle, func() { cancel(ErrIdle) })
	defer idle.Stop()
	resp, err := s.open(ctx, base)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		return false, err
	}
	defer resp.Body.Close()
	role := resp.Header.Get(KeyRoleHeader)
	s.c.update(func(st *State) {
		st.Connected, st.Source, st.Opened, st.Refusals, st.RefusedErr, st.KeyRole = true, base, true, 0, nil, role
	})
	s.c.setToken(base, resp.Header.Get(headerToken))
	if err := s.c.vetNode(base, resp.Header.Get(headerEpoch)); err != nil {
		return false, err
	}
	if err := s.startReports(ctx, base, resp.Header.Get(headerEpoch), func() { idle.Reset(s.idle) }); err != nil {
		return true, err
	}
	if r := s.rep; r != nil {
		// The stream's reporter ends with it: nothing of this stream runs
		// (or logs) once the client's Run has returned.
		defer func() {
			cancel(nil)
			<-r.done
		}()
	}
	dec := NewDecoder(resp.Body)
	for {
		ev, err := dec.Next()
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = cause
			}
			return healthy, err
		}
		idle.Reset(s.idle)
		beat, err := s.handle(ev)
		if err != nil {
			return false, err
		}
		healthy = healthy || beat
	}
}

// open sends the request, resuming after the client's position.
func (s *follower) open(ctx context.Context, base string) (*http.Response, error) {
	pos := strconv.FormatInt(s.c.State().Position, 10)
	u := strings.TrimRight(base, "/") + Path + "?after=" + pos + "&" + versionParam + "=" + version
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", pos)
	if f := s.c.Follower; f != nil {
		st := s.c.State()
		named := *f
		named.ID = st.ID
		req.Header.Set(headerFollower, named.header(st.Epoch))
		if tok := s.c.token(base); tok != "" {
			req.Header.Set(headerToken, tok)
		}
	}
	if key := s.c.apiKey(); key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	if err := checkResponse(resp); err != nil {
		resp.Body.Close()
		if errors.Is(err, errIDTaken) {
			s.c.renewID(s.log)
		}
		return nil, err
	}
	return resp, nil
}

// errIDTaken is wrapped by the error of a 409 verifier_id_taken answer.
var errIDTaken = errors.New("feed: another verifier holds this verifier id")

func checkResponse(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		kind := ErrStatus
		switch {
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			kind = ErrRefused
		case resp.StatusCode == http.StatusBadRequest:
			kind = ErrInvalid
		case resp.StatusCode == http.StatusConflict && errorCode(body) == codeIDTaken:
			kind = errIDTaken
		}
		err := fmt.Errorf("%w: %s: %s", kind, resp.Status, strings.TrimSpace(string(body)))
		if d := retryAfter(resp.Header); d > 0 && resp.StatusCode == http.StatusTooManyRequests {
			return &retryLater{err: err, after: d}
		}
		return err
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "text/event-stream" {
		return fmt.Errorf("%w: content type %q", ErrStatus, mt)
	}
	return nil
}

// errorCode returns the error code of a JSON error body, if it has one.
func errorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e) // not JSON: no code
	return e.Error
}

// handle acts on one event and reports whether it was a heartbeat.
func (s *follower) handle(ev Event) (beat bool, err error) {
	now := s.now()
	burst := s.burst
	s.burst = ev.Type == EventRevocations
	switch ev.Type {
	case EventRevocations:
		if burst {
			s.yield()
		}
		return false, s.revocations(ev.Data, ev.Head, now)
	case EventAsk:
		return false, s.ask(ev.Data, now)
	case EventHeartbeat:
		return true, s.heartbeat(ev.Data, now)
	case EventReset:
		return false, s.reset(ev.Data, now)
	case EventNodes:
		return false, s.nodes(ev.Data, now)
	}
	// Unknown events are for newer clients; still, the server is alive.
	s.c.update(func(st *State) { st.LastHeard = now })
	return false, nil
}

// yield lets other goroutines run between two events of entries, if any
// is waiting to. In a burst the stream's next bytes are already there, so the
// loop would otherwise keep its thread for as long as the burst lasts (the
// runtime preempts a goroutine only after 10 ms), and a request made ready
// on that thread would wait for it; with the yield it waits for one event
// at most (up to a bulk revocation's thousand or so entries, a few hundred
// µs; a single revocation's event is one line). Yielding when nothing waits
// would cost a scheduler round and often the wake-up of an idle thread for
// nothing: a tenth more CPU per entry in a burst. Reading the count of
// waiting goroutines costs some 50 ns. It comes before an event of entries
// that follows another, not after each: an ask written with the entries
// it asks for is answered at once, not after a round of every goroutine
// waiting (with thousands of followers in one process, all woken by the
// same revocation, that round is all of them).
func (s *follower) yield() {
	if s.runnable[0].Name == "" {
		s.runnable[0].Name = "/sched/goroutines/runnable:goroutines"
	}
	metrics.Read(s.runnable[:])
	if v := s.runnable[0].Value; v.Kind() == metrics.KindUint64 && v.Uint64() > 0 {
		runtime.Gosched()
	}
}

// applyChunk is the most entries of an event parsed and applied at a
// time. The node's events hold up to 2,048 (maxBatchEntries), which go to
// the consumer together: it applies a bulk revocation's entries several
// times faster a thousand at a time than a few hundred
// (revocation.Set.ApplyMany). The bound is for a node whose events are
// larger.
const applyChunk = 4096

// maxExpect bounds what Grow is told at once: more than the entries of one
// bulk revocation call (10,000 items) usually are, and little memory for a
// broken node's hint.
const maxExpect = 1 << 16

// entryScratch holds the entries of events being applied, for every
// follower of the process: an entry takes over 100 bytes and an event up
// to thousands, and a process may run many followers, few of them applying
// at any one time.
var entryScratch = sync.Pool{New: func() any { return new([]revocation.Entry) }}

var newline = []byte{'\n'}

// revocations applies the entries of a revocations event, in order, and
// records the position once for all of them. head is the event's head
// field (see expect). A line it cannot parse ends the stream with the
// position where the event began, as the protocol says, even if entries
// of the chunks before it were applied already: applying them again on the
// next stream changes nothing.
func (s *follower) revocations(data []byte, head int64, now time.Time) error {
	pos := s.c.State().Position
	applied := pos
	p := newLineParser(data, s.c.ApplyMany != nil)
	scratch := entryScratch.Get().(*[]revocation.Entry)
	defer entryScratch.Put(scratch)
	if cap(*scratch) < applyChunk {
		// Room for the event's entries at once, not in steps of a
		// growing slice (each a copy of entries over 100 bytes).
		if n := min(bytes.Count(data, newline)+1, applyChunk); cap(*scratch) < n {
			*scratch = make([]revocation.Entry, 0, n)
		}
	}
	var err error
	for !p.done() && err == nil {
		var es []revocation.Entry
		es, err = p.next((*scratch)[:0], applyChunk)
		*scratch = es
		if err != nil {
			clear(es)
			return err
		}
		s.expect(es, head, applied)
		applied, err = s.apply(es, applied)
		clear(es) // keep no keys alive
	}
	s.c.update(func(st *State) {
		st.Position, st.LastHeard = applied, now
		st.Head = max(st.Head, applied)
	})
	if applied > pos {
		s.reportIfDue()
	}
	return err
}

// expect tells the consumer (Grow) of the entries up to head, the event's
// head field, that it was not told of already: those after the position
// pos, this event's included, when the event says more follow it.
func (s *follower) expect(es []revocation.Entry, head, pos int64) {
	if s.c.Grow == nil || len(es) == 0 || head <= s.expected || head <= es[len(es)-1].Seq {
		return
	}
	from := max(pos, s.expected)
	s.expected = head
	if n := min(head-from, maxExpect); n > 0 {
		s.c.Grow(es[0].Kind, int(n))
	}
}

// apply records the entries of es after position pos, in seq order, and
// returns the position they took the client to: up to the first entry
// refused, with the error.
func (s *follower) apply(es []revocation.Entry, pos int64) (int64, error) {
	// Entries at or below the position, or out of order, are left out: a
	// resumed stream may repeat.
	// They are moved down over those left out, in place; an entry with
	// none left out before it stays where it is (an entry is over 100
	// bytes, and a bulk brings thousands to each follower).
	fresh, last := es[:0], pos
	for i := range es {
		if seq := es[i].Seq; seq > last {
			if len(fresh) < i {
				es[len(fresh)] = es[i]
			}
			fresh, last = fresh[:len(fresh)+1], seq
		}
	}
	n, err := s.applyMany(fresh)
	if n > 0 {
		pos = fresh[n-1].Seq
	}
	if err != nil {
		return pos, fmt.Errorf("feed: apply after seq %d: %w", pos, err)
	}
	return pos, nil
}

func (s *follower) heartbeat(data []byte, now time.Time) error {
	var hb heartbeatData
	if err := json.Unmarshal(data, &hb); err != nil {
		return fmt.Errorf("feed: malformed heartbeat: %w", err)
	}
	if err := s.checkEpoch(hb.Epoch); err != nil {
		return err
	}
	// The server has sent every live entry up to hb.Head on this stream,
	// and every one of them was applied (an Apply error ends the stream).
	s.c.update(func(st *State) {
		st.Position = max(st.Position, hb.Head)
		st.Head, st.LastHeard, st.Synced, st.Err = hb.Head, now, true, ""
	})
	s.reportIfDue()
	return nil
}

// ask notes that a confirmation waits for a position: the client reports
// once it has applied it.
func (s *follower) ask(data []byte, now time.Time) error {
	a, err := parseAsk(data)
	if err != nil {
		return fmt.Errorf("feed: malformed ask: %w", err)
	}
	s.c.update(func(st *State) { st.LastHeard = now })
	// The ask is noted before OnAsk: whoever OnAsk wakes finds it waiting
	// (askWaiting).
	r := s.rep
	fresh := r != nil && a.Position > r.asked.Load()
	if fresh {
		r.asked.Store(a.Position)
	}
	if s.c.OnAsk != nil {
		s.c.OnAsk(a.Position)
	}
	if fresh && !r.answerAsk() {
		s.reportIfDue()
	}
	return nil
}

func (s *follower) reset(data []byte, now time.Time) error {
	var r resetData
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("feed: malformed reset: %w", err)
	}
	s.log.Warn("feed: the server follows another log; starting over", "head", r.Head, "position", s.c.State().Position)
	// Unsynced first: whoever reads State while Reset clears the
	// consumer's state must not see it called current.
	s.c.update(func(st *State) {
		st.Position, st.Head, st.LastHeard, st.Synced = 0, r.Head, now, false
		st.FreshUntil = time.Time{}
		s.c.leases = nil
	})
	s.expected = 0
	if s.rep != nil {
		// The leases are gone, and the readiness the stream last reported
		// may be what it reports again once it has caught up with the new
		// log: that report is the stream's first again, which earns a lease
		// at once instead of at the next renewal.
		s.rep.restart()
	}
	if s.c.Reset != nil {
		s.c.Reset()
	}
	return nil
}

// SetAPIKey replaces the API key sent from now on and ends the current
// stream, which Run opens again with it.
func (c *Client) SetAPIKey(key string) {
	c.key.Store(&key)
	c.Reconnect()
}

// apiKey is the key to send: the last one set, else APIKey.
func (c *Client) apiKey() string {
	if k := c.key.Load(); k != nil {
		return *k
	}
	return c.APIKey
}
