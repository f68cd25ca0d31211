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
	"time"
)

// This file is the client's side of position reports and leases (see the
// package documentation): with a Follower set, every stream to a server
// that names its epoch gets a reporter goroutine, which POSTs the client's
// position after entries are applied and after each heartbeat, and turns
// each acknowledgement into a lease on the client's freshness.
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
// entries costs the authority at most one report per spacing.
const reportSpacing = 5 * time.Millisecond

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
// if the server takes reports, starts the stream's reporter.
func (s *follower) startReports(ctx context.Context, base, epoch string) error {
	s.legacy, s.kick = epoch == "", nil
	if s.legacy {
		return nil
	}
	if err := s.checkEpoch(epoch); err != nil {
		return err
	}
	if s.c.Follower == nil {
		return nil
	}
	kick := make(chan struct{}, 1)
	s.kick = kick
	go s.reportLoop(ctx, base, kick)
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

// kickReport asks the stream's reporter for a report (coalesced).
func (s *follower) kickReport() {
	if s.kick == nil {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// reportLoop reports whenever kicked, until ctx (the stream) ends.
func (s *follower) reportLoop(ctx context.Context, base string, kick chan struct{}) {
	failing := false
	// answered is when this stream's node last took a report (at first,
	// when the stream began): see refused.
	answered := s.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		start := time.Now()
		sent, err := s.report(ctx, base, answered)
		if err == nil {
			answered = s.now()
		}
		if err == nil && sent != s.ready() {
			// The lease this report earned made the client current (or
			// time made it stale): say so now, not at the next heartbeat.
			s.kickSelf(kick)
		}
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.log.Warn("feed: position report failed; the authority grants no lease meanwhile", "url", base, "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("feed: position reports accepted again", "url", base)
			failing = false
		}
		if !sleep(ctx, reportSpacing-time.Since(start)) {
			return
		}
	}
}

// refused acts on a report's refusal that a new stream fixes: the node has
// no record of this verifier (only a stream makes one), or another
// verifier holds its id (take a new one first).
//
// A node without a record is believed only once no report has been taken
// for half the staleness bound (answered is when one last was): behind a
// balancer that spreads requests over nodes, the stream's node takes the
// reports that reach it while the others answer unknown_verifier, and
// reconnecting on each of those would end a good stream again and again,
// leaving the verifier never current.
func (s *follower) refused(status int, body []byte, answered time.Time) {
	if status != http.StatusConflict {
		return
	}
	switch errorCode(body) {
	case codeIDTaken:
		s.c.renewID(s.log)
	case codeUnknown:
		if s.now().Sub(answered) < s.c.Follower.StaleAfter/2 {
			return
		}
	default:
		return
	}
	s.c.Reconnect()
}

// ready is the client's own view of whether it is current, as reported.
func (s *follower) ready() bool {
	if s.c.Ready != nil {
		return s.c.Ready()
	}
	st := s.c.State()
	return st.Synced && !s.now().After(st.FreshUntil)
}

// kickSelf queues one more report on the reporter's own channel.
func (s *follower) kickSelf(kick chan struct{}) {
	select {
	case kick <- struct{}{}:
	default:
	}
}

// report sends the client's position and records the lease granted. It
// returns the readiness it reported. answered is when this stream's node
// last took a report (see refused).
func (s *follower) report(ctx context.Context, base string, answered time.Time) (bool, error) {
	f := s.c.Follower
	ready := s.ready()
	st := s.c.State()
	body, err := json.Marshal(positionReport{ID: st.ID, Name: f.Name, Host: f.Host, Version: f.Version,
		StaleAfterMS: f.StaleAfter.Milliseconds(), Position: st.Position, Ready: ready, Epoch: st.Epoch,
		Token: s.c.token(base)})
	if err != nil {
		return ready, err
	}
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+PositionPath, bytes.NewReader(body))
	if err != nil {
		return ready, err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.c.APIKey)
	}
	sent := s.now() // no later than the server's answer: the lease starts here
	resp, err := s.http.Do(req)
	if err != nil {
		return ready, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxReport))
	if resp.StatusCode != http.StatusOK {
		s.refused(resp.StatusCode, b, answered)
		return ready, fmt.Errorf("%w: %s: %s", ErrStatus, resp.Status, strings.TrimSpace(string(b)))
	}
	var ack positionAck
	if err := json.Unmarshal(b, &ack); err != nil {
		return ready, fmt.Errorf("feed: malformed position answer: %w", err)
	}
	s.c.setToken(base, ack.Token)
	d := min(f.StaleAfter, time.Duration(ack.LeaseMS)*time.Millisecond)
	s.c.addLease(lease{head: ack.Head, until: sent.Add(d), epoch: ack.Epoch})
	return ready, nil
}
