package feed

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/httperr"
)

// PositionPath is where verifiers report their position, relative to an
// authority's base URL.
const PositionPath = "/v1/feed/position"

// maxReport caps a position report's body.
const maxReport = 4 << 10

// positionReport is the body of POST PositionPath.
type positionReport struct {
	ID           string `json:"id"`
	Name         string `json:"name,omitempty"`
	Host         string `json:"host,omitempty"`
	Version      string `json:"version,omitempty"`
	StaleAfterMS int64  `json:"stale_after_ms"`
	Position     int64  `json:"position"`
	Ready        bool   `json:"ready"`
	Epoch        string `json:"epoch"`
	// Token is the report token the hub gave this verifier (on its stream,
	// or in the answer to a report that made its record).
	Token string `json:"token,omitempty"`
}

func (r positionReport) follower() Follower {
	return Follower{ID: r.ID, Name: r.Name, Host: r.Host, Version: r.Version,
		StaleAfter: time.Duration(r.StaleAfterMS) * time.Millisecond}
}

// positionAck is the answer to a position report: the lease.
type positionAck struct {
	// Head is the hub's position when it received the report. The lease
	// vouches for the verifier's state once it has applied Head.
	Head int64 `json:"head"`
	// LeaseMS is how long after sending the report the verifier's state
	// counts as current (once it has applied Head); at most its staleness
	// bound.
	LeaseMS int64  `json:"lease_ms"`
	Epoch   string `json:"epoch"`
	// Token is the report token of the verifier's record.
	Token string `json:"token"`
}

// ServePosition serves POST PositionPath: a verifier says which position
// it has applied; the answer is a lease (see the package documentation).
// Like ServeHTTP it checks no credentials.
func (h *Hub) ServePosition(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httperr.Write(w, http.StatusMethodNotAllowed, httperr.InvalidRequest, "positions are reported with POST")
		return
	}
	var rep positionReport
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReport))
	if err := dec.Decode(&rep); err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.InvalidRequest, "the body must be a JSON position report")
		return
	}
	f := rep.follower()
	if err := f.check(); err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.InvalidRequest, err.Error())
		return
	}
	if rep.Position < 0 {
		httperr.Write(w, http.StatusBadRequest, httperr.InvalidRequest, "position must not be negative")
		return
	}
	if err := h.Ready(); err != nil {
		httperr.Write(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		return
	}
	if rep.Epoch != h.epoch {
		httperr.Write(w, http.StatusConflict, codeConflict, "the verifier follows another log (epoch "+rep.Epoch+"; this one is "+h.epoch+")")
		return
	}
	ack, err := h.report(f, rep.Token, rep.Position, rep.Ready)
	if err != nil {
		followError(w, err)
		return
	}
	httperr.WriteJSON(w, http.StatusOK, ack)
}

var errNoLease = errors.New("this node cannot vouch for verifiers right now")

// ServeReports serves POST ReportsPath: a named follower's report stream,
// full duplex, one report line in and one answer line out at a time (see
// reportchan.go and docs/feed-protocol.md). Like ServeHTTP it checks no
// credentials. The stream ends when the client ends its body, on a
// refused report, and when the hub stops. As in ServeHTTP, what it does
// once is done in a function of its own (openReports), so that the frames
// it keeps on its goroutine's stack are small.
func (h *Hub) ServeReports(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	f, token, done, ok := h.openReports(w, r, rc)
	if !ok {
		return
	}
	defer done()
	// A read blocked on a quiet stream ends when the request's context
	// does (the key was revoked, the stream reached its age) or the hub
	// stops.
	unblock := func() { _ = rc.SetReadDeadline(time.Now()) }
	defer context.AfterFunc(r.Context(), unblock)()
	defer context.AfterFunc(h.stopCtx, unblock)()
	if rc.Flush() != nil {
		return
	}
	h.answerReports(w, rc, bufio.NewReaderSize(r.Body, maxReportLine), f, token)
}

// openReports checks a report stream's request and registers it with its
// follower's record, and writes the answer's status (not yet sent); or
// answers an error and reports false.
func (h *Hub) openReports(w http.ResponseWriter, r *http.Request, rc *http.ResponseController) (Follower, string, func(), bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httperr.Write(w, http.StatusMethodNotAllowed, httperr.InvalidRequest, "reports are streamed with POST")
		return Follower{}, "", nil, false
	}
	// The body is a stream that ends only when the client ends it: a
	// refusal must not wait for it (the server would read the body to its
	// end before answering), and the connection is not reused after one.
	_ = rc.EnableFullDuplex() // HTTP/2 is full duplex already
	w.Header().Set("Connection", "close")
	f, epoch, named, err := parseFollower(r.Header.Get(headerFollower))
	if err == nil && !named {
		err = errors.New("a report stream needs the " + headerFollower + " header")
	}
	if err != nil {
		httperr.Write(w, http.StatusBadRequest, httperr.InvalidRequest, err.Error())
		return Follower{}, "", nil, false
	}
	if err := h.Ready(); err != nil {
		httperr.Write(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		return Follower{}, "", nil, false
	}
	if epoch != h.epoch {
		httperr.Write(w, http.StatusConflict, codeConflict, "the verifier follows another log (epoch "+epoch+"; this one is "+h.epoch+")")
		return Follower{}, "", nil, false
	}
	token := r.Header.Get(headerToken)
	done, err := h.fl.openReports(f.ID, token)
	if err != nil {
		followError(w, err)
		return Follower{}, "", nil, false
	}
	w.Header().Del("Connection")
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return f, token, done, true
}

// answerReports reads report lines and writes their answers until the
// body ends or a report is refused. A report numbered 0 wants no answer
// (a follower that holds a lease answering an ask): it costs the hub the
// line read, and nothing written unless it is refused.
func (h *Hub) answerReports(w http.ResponseWriter, rc *http.ResponseController, br *bufio.Reader, f Follower, token string) {
	var out []byte
	var deadline time.Time
	unflushed := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return // the client ended the stream, or the connection broke
		}
		n, pos, ready, err := parseReportLine(line[:len(line)-1])
		var ack positionAck
		if err == nil {
			ack, err = h.report(f, token, pos, ready)
		}
		switch {
		case err != nil:
			out = appendRefusal(out[:0], err)
		case n == 0:
			out = out[:0]
		default:
			out = appendAnswer(out[:0], n, ack)
		}
		if len(out) > 0 {
			// As on the stream (conn.begin): the deadline moves once half
			// of it has passed, not at every answer. I/O, not logic: wall
			// clock.
			if now := time.Now(); deadline.Sub(now) < h.cfg.WriteTimeout/2 {
				deadline = now.Add(h.cfg.WriteTimeout)
				_ = rc.SetWriteDeadline(deadline)
			}
			if _, werr := w.Write(out); werr != nil || err != nil {
				_ = rc.Flush()
				return
			}
			unflushed = true
		}
		if unflushed && br.Buffered() == 0 {
			if rc.Flush() != nil {
				return
			}
			unflushed = false
		}
	}
}

// appendRefusal appends the refusal line of a report refused with err.
func appendRefusal(dst []byte, err error) []byte {
	code := "temporarily_unavailable"
	switch {
	case errors.Is(err, errClaimed):
		code = codeIDTaken
	case errors.Is(err, errUnknown):
		code = codeUnknown
	case errors.Is(err, errReportLine):
		code = httperr.InvalidRequest
	}
	dst = append(dst, "! "+code+" "...)
	return append(dst, strings.ReplaceAll(err.Error(), "\n", " ")+"\n"...)
}

// report records a position report and grants a lease: as long as the
// follower's staleness bound (at most the hub's cap), cut short at the
// hub's License; none while the hub cannot read the log (reading).
func (h *Hub) report(f Follower, token string, pos int64, ready bool) (positionAck, error) {
	now := h.cfg.Clock.Now()
	head := h.Head()
	// A verifier cannot have applied what this node has not read: a
	// position beyond the head is recorded as the head, so a feed key
	// cannot write records that name positions no node reached (they would
	// look like a restored log at the next start).
	token, lease, err := h.fl.reported(f, token, min(pos, head), ready, now)
	if err != nil {
		return positionAck{}, err
	}
	if h.cfg.License != nil {
		lease = min(lease, h.cfg.License().Sub(now))
	}
	if h.licenseAt != nil {
		lease = min(lease, h.licenseAt(head).Sub(now))
	}
	if lease <= 0 || !h.reading() {
		return positionAck{}, errNoLease
	}
	return positionAck{Head: head, LeaseMS: lease.Milliseconds(), Epoch: h.epoch, Token: token}, nil
}

// Epoch returns the epoch of the log the hub serves.
func (h *Hub) Epoch() string { return h.epoch }

// ErrStarting is Ready's answer until Run has read the log's head: until
// then the hub can neither open streams nor take position reports.
var ErrStarting = errors.New("the feed is starting")

// Ready reports nil once Run has read the log's head, ErrStarting before.
// The node's /readyz includes it, so that a balancer sends verifiers only to
// a node whose feed serves.
func (h *Hub) Ready() error {
	select {
	case <-h.ready:
		return nil
	default:
		return ErrStarting
	}
}

// Followers returns the verifiers that follow this hub and were heard
// within their staleness bound.
func (h *Hub) Followers() []FollowerState { return h.fl.list(h.cfg.Clock.Now()) }

// Safe returns the highest position up to which every verifier following
// this hub holds every entry or refuses every token, the hub's head, and
// the earliest later instant at which time alone may raise safe (zero if
// none). See the package documentation.
func (h *Hub) Safe() (safe, head int64, next time.Time) {
	head = h.Head()
	safe, next = h.fl.safe(head, h.cfg.Clock.Now())
	return safe, head, next
}

// behind returns the followers among rs (all when rs is nil) not yet
// safe up to x, and the earliest instant at which time alone may make one
// of them so (zero if none). See followers.behind.
func (h *Hub) behind(rs []*record, x int64) ([]*record, time.Time) {
	return h.fl.behind(rs, x, h.cfg.Clock.Now())
}

// FollowerCount returns how many followers Followers would return.
func (h *Hub) FollowerCount() int {
	n, _ := h.fl.count(h.cfg.Clock.Now())
	return n
}

// FollowerStats returns how many followers Followers would return, and
// the longest staleness bound among them, without copying them.
func (h *Hub) FollowerStats() (n int, longest time.Duration) { return h.fl.count(h.cfg.Clock.Now()) }

// ChangedFollowers returns the followers whose stored record is out of
// date, each once until it is again: new, changed, or (with
// HubConfig.SharedRecords) heard since more than half their staleness
// bound after it was last returned. It looks at those alone, not at every
// follower.
func (h *Hub) ChangedFollowers() []FollowerState { return h.fl.takeChanged(h.cfg.Clock.Now()) }

// Pending returns up to limit of the followers for which position x is not
// yet in force (see Safe), and how many there are in all.
func (h *Hub) Pending(x int64, limit int) ([]FollowerState, int) {
	return h.fl.pending(x, limit, h.cfg.Clock.Now())
}

// FollowersChanged returns a channel closed at the next change of the
// head or of a follower's record: made, dropped, its position, readiness
// or identity changed, a stream opened or closed. A report that only
// renews a lease changes none of these.
func (h *Hub) FollowersChanged() <-chan struct{} {
	return *h.fl.changed.Load()
}
