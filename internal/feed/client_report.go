package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file is the client's side of position reports and leases (see
// docs/feed-protocol.md): with a Follower set, every stream gets a
// reporter goroutine, which reports the client's position at the start of
// the stream (once it has caught up, or not ready half the bound after it
// opened if it is still catching up then), when the server asks for a position the client has applied,
// when half of its lease has passed, and when its readiness changes,
// and turns each answer into a lease on the client's freshness. Reports go
// on one long request per stream (reportchan.go), or one POST each where
// that request is not answered.
//
// Why a lease and not the arrival of heartbeats: a heartbeat can sit in a
// socket buffer. A verifier frozen for a while (SIGSTOP, a long GC pause, a
// suspended VM) finds, when it resumes, heartbeats sent long ago that say
// "you have everything" about a log that has moved on; counted from their
// arrival they would make it current for another staleness bound, while
// the authority, having heard nothing from it, has already counted it as
// refusing tokens. A lease is counted from the moment the report that
// earned it was sent, on the client's own clock, and vouches only once the
// client has applied the head the server named when it answered: a report
// is a round trip, so the server's answer cannot be older than the report.

// reportTimeout bounds one report; a node that does not answer in time
// simply grants no lease.
const reportTimeout = 5 * time.Second

// reportSpacing is the least time between the starts of two reports of one
// stream: the first report after a quiet spell goes at once, a flood of
// asks costs the authority at most one report per spacing.
const reportSpacing = 5 * time.Millisecond

// A failed report is retried after a jittered backoff (Backoff) from
// reportRetryMin doubling up to reportRetryMax: soon after a blip, and no
// more than about once a second while a node refuses, which leaves a
// renewal half its lease to be retried in (RenewShare). tegata's Node
// follower (js/src/feed.js) retries on the same bounds.
const (
	reportRetryMin = 100 * time.Millisecond
	reportRetryMax = time.Second
)

// RenewShare: a follower renews its lease once 1/RenewShare of it has
// passed since the report that earned it was sent, and so is heard by its
// node at least that often while well (the node's listing, internal/inforce,
// counts a verifier silent past that as stale). A renewal costs the node a
// line read and a line written, and renewals are most of what an idle
// follower costs it, so they come no more often than the lease needs: half
// of it is left for a renewal that fails to be retried (every second at
// most, see run) or for the stream to fail over to another node, whose
// first report earns a lease at once. The lease itself, counted from the
// report's send time, keeps its meaning whatever the renewal's pace.
const RenewShare = 2

// answerlessShare: a follower answers an ask without wanting an answer
// when at least 1/answerlessShare of its bound is left on its lease.
const answerlessShare = 3

// maxLeases caps the acknowledged reports kept until their head is applied.
const maxLeases = 16

// errEpochChanged ends a stream whose server follows a log with another
// epoch; the client has reset and reconnects from the start.
var errEpochChanged = errors.New("feed: the authority's log has another epoch; starting over")

// lease is an acknowledged report: once Position reaches head, the client
// is current until until.
type lease struct {
	head  int64
	until time.Time
	epoch string
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// renewLocked turns the leases whose head has been applied into freshness.
// c.mu is held.
func (c *Client) renewLocked() {
	kept := c.leases[:0]
	for _, l := range c.leases {
		if c.st.Position >= l.head {
			c.st.FreshUntil = later(c.st.FreshUntil, l.until)
		} else {
			kept = append(kept, l)
		}
	}
	c.leases = kept
}

// addLease records an acknowledged report, unless the client has moved to
// another epoch since it was sent.
func (c *Client) addLease(l lease) {
	c.update(func(st *State) {
		if st.Epoch != l.epoch {
			return
		}
		if len(c.leases) == maxLeases {
			c.leases = append(c.leases[:0], c.leases[1:]...)
		}
		c.leases = append(c.leases, l)
	})
}

// token returns the report token the authority at base gave this client.
func (c *Client) token(base string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens[base]
}

// renewID takes a new id: an authority said another verifier holds the
// current one (it was silent past its bound, and someone took its id). The
// report tokens were the old id's.
func (c *Client) renewID(log *slog.Logger) {
	id := NewFollowerID()
	c.mu.Lock()
	old := c.st.ID
	c.st.ID = id
	clear(c.tokens)
	c.mu.Unlock()
	log.Warn("feed: another verifier holds this verifier's id; naming this one anew", "was", old, "now", id)
}

// setToken keeps the report token the authority at base gave this client
// (on a stream, or in the answer to a report that made its record there).
func (c *Client) setToken(base, tok string) {
	if tok == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil {
		c.tokens = map[string]string{}
	}
	c.tokens[base] = tok
}

// startReports looks at the epoch the server named for a new stream and,
// when the client names itself, starts the stream's reporter. alive is
// called when an answer shows the server alive and the stream current:
// the stream's heartbeats, which the server leaves out while answers
// come, would show no more.
func (s *follower) startReports(ctx context.Context, base, epoch string, alive func()) error {
	s.rep = nil
	if err := s.checkEpoch(epoch); err != nil {
		return err
	}
	if s.c.Follower == nil {
		return nil
	}
	r := newReporter(s, base, alive)
	s.rep = r
	s.c.reporting.Store(r)
	go func() {
		defer close(r.done)
		defer s.c.reporting.CompareAndSwap(r, nil)
		r.run(ctx)
	}()
	return nil
}

// checkEpoch compares an epoch the server named with the one the client
// follows. On a change it resets the client, as the reset event does, and
// returns errEpochChanged: the stream was opened after a position in the
// other log.
func (s *follower) checkEpoch(epoch string) error {
	st := s.c.State()
	switch {
	case epoch == "" || epoch == st.Epoch:
		return nil
	case st.Epoch == "":
		s.c.update(func(st *State) { st.Epoch = epoch })
		return nil
	}
	s.log.Warn("feed: the authority follows a log with another epoch; starting over",
		"was", st.Epoch, "now", epoch, "position", st.Position)
	s.c.update(func(st *State) {
		st.Position, st.Head, st.Synced, st.Epoch = 0, 0, false, epoch
		st.FreshUntil = time.Time{}
		s.c.leases = nil
	})
	s.c.setNodes(nil, s.log) // vetted for the old log
	if s.c.Reset != nil {
		s.c.Reset()
	}
	return errEpochChanged
}

// errReconnect ends a stream on Reconnect.
var errReconnect = errors.New("feed: reconnect requested")

// Reconnect ends the current stream, if any; Run connects again as after
// any other end of a stream. A verifier calls it when another channel
// (the key set) says the authority now serves another log.
func (c *Client) Reconnect() {
	c.mu.Lock()
	end := c.endStream
	c.mu.Unlock()
	if end != nil {
		end(errReconnect)
	}
}

// reporter sends the reports of one stream.
type reporter struct {
	s     *follower
	base  string
	kick  chan struct{}
	alive func()
	// asked is the highest position the stream asked for; reported the
	// highest position reported on the stream (-1 before the first); ready
	// the readiness last reported. The stream's goroutine reads them to
	// tell whether a report is due (due) without waking the reporter.
	asked    atomic.Int64
	reported atomic.Int64
	ready    atomic.Bool
	// tried is set once the stream's first report (the first since a
	// reset) has been sent, whatever became of it.
	tried atomic.Bool
	// mu guards what both the reporter and the stream's goroutine use to
	// send a report that wants no answer (answerAsk): the report stream,
	// whether it is given up, when the last report went and whether one
	// waits for its answer. Both change last under mu; the reporter's
	// goroutine alone changes the others, under mu, and reads them
	// without.
	mu     sync.Mutex
	ch     *reportChannel // the report stream; nil before it opens
	single bool           // the report stream did not answer: one POST per report
	last   time.Time      // when the last report started (wall clock)
	// waiting is set while a report that wants an answer is on its way:
	// answerAsk then leaves the ask to the reporter, which looks again
	// once the answer is in, so that no later position can overtake the
	// one in flight and the node never sees the position go back.
	waiting bool
	// Used by the reporter's goroutine only.
	answered time.Time     // when the node last took a report (see refused)
	done     chan struct{} // closed when run has returned
}

func newReporter(s *follower, base string, alive func()) *reporter {
	r := &reporter{s: s, base: base, kick: make(chan struct{}, 1), alive: alive, answered: s.now(),
		done: make(chan struct{})}
	r.reported.Store(-1)
	return r
}

// ReportIfDue has the client report now if a report is due: with Reported
// set, when its answer may have reached a position asked for.
func (c *Client) ReportIfDue() {
	if r := c.reporting.Load(); r != nil && r.due() {
		r.wake()
	}
}

// askWaiting returns the position the current stream was last asked for
// and whether it waits for the client's report: it is above what the
// client reported on the stream (anything, before its first report).
func (c *Client) askWaiting() (int64, bool) {
	r := c.reporting.Load()
	if r == nil {
		return 0, false
	}
	a := r.asked.Load()
	return a, a > max(r.reported.Load(), 0)
}

// position is the position the client reports at st: Reported's, or
// st.Position.
func (c *Client) position(st State) int64 {
	if c.Reported != nil {
		return min(c.Reported(st), st.Position)
	}
	return st.Position
}

// reportIfDue wakes the stream's reporter when a report is due.
func (s *follower) reportIfDue() {
	if r := s.rep; r != nil && r.due() {
		r.wake()
	}
}

// due reports whether the client owes a report: it has applied the
// position last asked for and not reported it yet, or its readiness
// changed since it last reported.
func (r *reporter) due() bool {
	st := r.s.c.State()
	if r.reported.Load() < 0 {
		// The first report, once caught up (see worth); once tried, a
		// failed one is retried on the backoff, not at every event.
		return st.Synced && !r.tried.Load()
	}
	if a := r.asked.Load(); a > r.reported.Load() && r.s.c.position(st) >= a {
		return true
	}
	return r.s.readyOf(st) != r.ready.Load()
}

// worth says whether a wake-up of the reporter calls for a report now: a
// renewal or a retry always does, once the stream has caught up (the
// first report waits for it, so that it says the client ready and its
// answer's lease needs no second report to say so; the stream's first
// heartbeat wakes the reporter then, see due); any other only while a
// report is due (a wake-up that a report since has answered is not).
//
// A stream that has not caught up when its renewal's timer fires (half
// the bound after it opened, or after the last answer when a reset
// restarted its reports) reports, not ready, all the same (fired): the
// node drops the record of a follower silent for its bound, refuses its
// reports as unknown_verifier from then on, and a first catch-up that
// outlasts the bound (a large log, a slow link) would end in a reconnect.
func (r *reporter) worth(renewing, fired bool) bool {
	if r.reported.Load() < 0 && !r.s.c.State().Synced {
		return fired
	}
	return renewing || r.due()
}

// restart makes the next report, once the stream has caught up, the
// stream's first again (after a reset: the leases are gone).
func (r *reporter) restart() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reported.Store(-1)
	r.tried.Store(false)
}

func (r *reporter) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run reports at once, then whenever due or a lease needs renewing, until
// ctx (the stream) ends.
func (r *reporter) run(ctx context.Context) {
	defer r.closeChannel()
	// A lease runs out on the client's clock, so it is renewed on that
	// clock; a failed report is retried on the wall clock, as every wait
	// on a peer is. The stream's first report is due as a renewal is (it
	// must earn a lease), at once for a stream resumed while synced; the
	// timer fires first half the bound after the stream opened, which
	// matters only to a stream still catching up then (see worth).
	var renewDue, renewFired atomic.Bool
	renewDue.Store(true)
	renew := r.s.clock.AfterFunc(r.s.c.Follower.StaleAfter/RenewShare, func() {
		renewDue.Store(true)
		renewFired.Store(true)
		r.wake()
	})
	defer renew.Stop()
	r.wake()
	retry := time.AfterFunc(time.Hour, r.wake)
	retry.Stop()
	defer retry.Stop()
	failing, failures := false, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		// Reports of a stream start at least reportSpacing apart. The
		// wait comes before a report, not after each: most reports
		// start long after the last, and need no timer.
		if !sleep(ctx, r.spacing()) {
			return
		}
		// A renewal, and the retry of a failed report, must earn a lease.
		// The flag is cleared only when this report serves it: a renewal
		// that falls due after it was read stays due for the next round.
		timed := renewDue.Load()
		renewing := timed || failures > 0
		if !r.worth(renewing, renewFired.Load() || failures > 0) {
			continue
		}
		if timed {
			renewDue.Store(false)
			renewFired.Store(false)
		}
		d, err := r.report(ctx, renewing)
		switch {
		case err == nil && d == 0:
			// Sent without an answer: the lease and its renewal stand.
			if r.due() {
				r.wake()
			}
		case err == nil:
			r.answered, failures = r.s.now(), 0
			retry.Stop()
			// The lease is renewed: a renewal that fell due meanwhile
			// (the stream's first, at once) is not due any more.
			renewDue.Store(false)
			renewFired.Store(false)
			renew.Reset(d / RenewShare)
			if r.due() {
				r.wake() // an ask, or a lease that made the client current
			}
		default:
			failures++
			retry.Reset(Backoff(failures, reportRetryMin, reportRetryMax))
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			r.s.log.Warn("feed: position report failed; the authority grants no lease meanwhile", "url", r.base, "err", err)
			failing = true
		case err == nil && failing:
			r.s.log.Info("feed: position reports accepted again", "url", r.base)
			failing = false
		}
	}
}

// spacing is how long a report must wait for reportSpacing to have
// passed since the last one started.
func (r *reporter) spacing() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return reportSpacing - time.Since(r.last)
}

// answerAsk sends, from the stream's goroutine, the report that answers
// an ask, when it may go without an answer (see answerless) and
// reportSpacing has passed since the last report: the ask then costs the
// client no wake-up of its reporter, only the hand-over of the line to
// the HTTP client's writer. It reports whether it sent it; if not, the
// reporter does (reportIfDue).
func (r *reporter) answerAsk() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting || time.Since(r.last) < reportSpacing {
		return false
	}
	st := r.s.c.State()
	ready := r.s.readyOf(st)
	prevReported, prevReady := r.reported.Load(), r.ready.Load()
	pos := r.s.c.position(st)
	if !r.answerless(st, pos, ready, prevReported, prevReady) || r.ch.send(pos, ready) != nil {
		return false
	}
	r.reported.Store(max(prevReported, pos))
	r.ready.Store(ready)
	r.last = time.Now()
	return true
}

// report sends the client's position, records the lease granted and
// returns its length; 0 when the report went without an answer (see
// answerless), which a renewal never does.
func (r *reporter) report(ctx context.Context, renewing bool) (time.Duration, error) {
	r.mu.Lock()
	r.last = time.Now()
	r.tried.Store(true)
	st := r.s.c.State()
	ready := r.s.readyOf(st)
	// What the report says counts as said from now on (due compares with
	// it while the report is in flight); a failed report restores it, and
	// the retry says it again.
	pos := r.s.c.position(st)
	prevReported, prevReady := r.reported.Load(), r.ready.Load()
	r.reported.Store(max(prevReported, pos))
	r.ready.Store(ready)
	if !renewing && r.answerless(st, pos, ready, prevReported, prevReady) {
		if err := r.ch.send(pos, ready); err == nil {
			r.mu.Unlock()
			return 0, nil
		}
		// The queue is full: the report stream is stuck; a round trip
		// tells.
	}
	r.waiting = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.waiting = false
		r.mu.Unlock()
	}()
	var (
		a    answer
		sent time.Time
		err  error
	)
	if !r.single {
		sent, a, err = r.viaChannel(ctx, st, pos, ready)
		if errors.Is(err, errNoChannel) {
			r.s.log.Info("feed: the report stream failed; reporting with one request each on this stream", "url", r.base, "err", err)
			r.mu.Lock()
			r.single = true
			r.mu.Unlock()
		}
	}
	if r.single {
		sent, a, err = r.viaPOST(ctx, st, pos, ready)
	}
	if err == nil && a.leaseMS <= 0 {
		// A node that cannot vouch for the client answers 503; a lease
		// under a millisecond comes as none. Either way there is no lease
		// to renew on: the report is retried on the backoff.
		err = fmt.Errorf("feed: the node granted no lease (lease_ms %d)", a.leaseMS)
	}
	if err != nil {
		r.mu.Lock()
		r.reported.Store(prevReported)
		r.ready.Store(prevReady)
		r.mu.Unlock()
		var ref *refusal
		if errors.As(err, &ref) {
			r.s.refused(ref.code, r.answered)
		}
		return 0, err
	}
	// A lease longer than the bound counts as the bound. Compared in
	// milliseconds: a lease_ms past a Duration's range would wrap into a
	// lease in the past, renewed at once, again and again.
	d := r.s.c.Follower.StaleAfter
	if a.leaseMS <= d.Milliseconds() {
		d = time.Duration(a.leaseMS) * time.Millisecond
	}
	r.s.c.addLease(lease{head: a.head, until: sent.Add(d), epoch: st.Epoch})
	r.heard(a.head)
	return d, nil
}

// heard counts an answer naming head as hearing from the server on the
// stream, as a heartbeat would, when the stream has brought the client
// up to head: a server sends no periodic heartbeat on a stream whose
// follower has a report stream open (its renewals come more often). An
// answer from a node whose stream is behind, or cut without either end
// knowing, shows nothing of that stream: its head moves past the
// client's position with the next revocation, and the stream's silence
// then ends it.
func (r *reporter) heard(head int64) {
	if r.s.c.State().Position < head {
		return
	}
	r.s.c.update(func(st *State) { st.LastHeard = r.s.now() })
	if r.alive != nil {
		r.alive()
	}
}

// answerless reports whether a report may go without an answer: it
// answers an ask, on an open report stream, from a client that holds a
// lease for at least another third of its bound and says nothing new of
// its readiness. Its lease then needs nothing from the answer (renewals
// keep their own schedule), and the node spares a write per follower per
// confirmation. r.mu is held.
func (r *reporter) answerless(st State, pos int64, ready bool, prevReported int64, prevReady bool) bool {
	if r.single || r.ch == nil || !r.ch.isOpen() || !ready || ready != prevReady {
		return false
	}
	a := r.asked.Load()
	return a > prevReported && pos >= a && st.FreshUntil.Sub(r.s.now()) > r.s.c.Follower.StaleAfter/answerlessShare
}

// openWait is how long a report waits for the report stream's 200 before
// it goes as a request of its own: long enough for a node that answers at
// once (the first report of every stream would otherwise cost the node a
// request and a connection of its own), short enough that a proxy that
// holds the 200 back delays a verifier's first lease by little.
const openWait = 250 * time.Millisecond

// viaChannel reports on the stream's report stream, opening it first.
// Until the node has answered it (200; the report that opens it waits up
// to openWait, later ones not at all), the report goes as a request of its
// own; if the report stream fails other than by a refusal, the client
// reports that way for the rest of the feed stream.
func (r *reporter) viaChannel(ctx context.Context, st State, pos int64, ready bool) (time.Time, answer, error) {
	var wait time.Duration
	if r.ch == nil {
		ch := r.s.openReportChannel(ctx, r.base)
		r.mu.Lock()
		r.ch = ch
		r.mu.Unlock()
		wait = openWait
	}
	if !r.ch.waitOpen(ctx, wait) {
		if err := r.ch.failed(); err != nil {
			r.closeChannel()
			if isRefusal(err) {
				return r.s.now(), answer{}, err
			}
			return r.s.now(), answer{}, fmt.Errorf("%w: %w", errNoChannel, err)
		}
		return r.viaPOST(ctx, st, pos, ready)
	}
	sent := r.s.now() // no later than the server's answer: the lease starts here
	a, err := r.ch.roundTrip(ctx, pos, ready, reportTimeout)
	if err != nil {
		r.closeChannel()
		if !isRefusal(err) {
			err = fmt.Errorf("%w: %w", errNoChannel, err)
		}
	}
	return sent, a, err
}

func (r *reporter) closeChannel() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch != nil {
		r.ch.close()
		r.ch = nil
	}
}

// viaPOST sends one report as a request of its own.
func (r *reporter) viaPOST(ctx context.Context, st State, pos int64, ready bool) (time.Time, answer, error) {
	f := r.s.c.Follower
	body, err := json.Marshal(positionReport{ID: st.ID, Name: f.Name, Host: f.Host, Version: f.Version,
		StaleAfterMS: ceilMS(f.StaleAfter), Position: pos, Ready: ready, Epoch: st.Epoch,
		Token: r.s.c.token(r.base)})
	if err != nil {
		return time.Time{}, answer{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(r.base, "/")+PositionPath, bytes.NewReader(body))
	if err != nil {
		return time.Time{}, answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key := r.s.c.apiKey(); key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	sent := r.s.now()
	resp, err := r.s.http.Do(req)
	if err != nil {
		return sent, answer{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxReport))
	if resp.StatusCode != http.StatusOK {
		return sent, answer{}, statusError(resp.Status, resp.StatusCode, b)
	}
	var ack positionAck
	if err := json.Unmarshal(b, &ack); err != nil {
		return sent, answer{}, fmt.Errorf("feed: malformed position answer: %w", err)
	}
	r.s.c.setToken(r.base, ack.Token)
	return sent, answer{head: ack.Head, leaseMS: ack.LeaseMS}, nil
}

// refused acts on a report's refusal that a new stream fixes: the node has
// no record of this verifier (only a stream makes one), another verifier
// holds its id (take a new one first), or the node follows another epoch
// (the new stream's answer names it, and the client starts over).
//
// A node without a record, or of another epoch, is believed only once no
// report has been taken for the renewals' interval, 1/RenewShare of the
// staleness bound (answered is when one last was), by when a renewal has
// gone unanswered: behind a balancer that spreads requests over nodes, the
// stream's node takes the reports that reach it while the others answer
// unknown_verifier (or conflict, nodes of another cluster), and
// reconnecting on each of those would end a good stream again and again,
// leaving the verifier never current.
func (s *follower) refused(code string, answered time.Time) {
	switch code {
	case codeIDTaken:
		s.c.renewID(s.log)
	case codeUnknown, codeConflict:
		if s.now().Sub(answered) < s.c.Follower.StaleAfter/RenewShare {
			return
		}
	default:
		return
	}
	s.c.Reconnect()
}

// readyOf is the readiness the client reports: its own view of whether
// its state is complete, its lease aside. The node knows which leases it
// granted, and shows a follower it has not heard from within its bound as
// stale whatever the follower said; a lease counted in the readiness would
// make the answer that grants a stream its first lease a change of
// readiness, to be reported at once: two report round trips for every
// verifier that connects instead of one.
func (s *follower) readyOf(st State) bool {
	if s.c.Ready != nil {
		return s.c.Ready()
	}
	return st.Synced
}
