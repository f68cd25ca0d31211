package feed

import (
	"encoding/json"
	"errors"
	"net/http"
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
		httperr.Write(w, http.StatusConflict, "conflict", "the verifier follows another log (epoch "+rep.Epoch+"; this one is "+h.epoch+")")
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

// report records a position report and grants a lease: as long as the
// follower's staleness bound (at most the hub's cap), cut short at the
// hub's License.
func (h *Hub) report(f Follower, token string, pos int64, ready bool) (positionAck, error) {
	now := h.cfg.Now()
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
	if lease <= 0 {
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
func (h *Hub) Followers() []FollowerState { return h.fl.list(h.cfg.Now()) }

// Safe returns the highest position up to which every verifier following
// this hub holds every entry or refuses every token, the hub's head, and
// the earliest later instant at which time alone may raise safe (zero if
// none). See the package documentation.
func (h *Hub) Safe() (safe, head int64, next time.Time) {
	head = h.Head()
	safe, next = h.fl.safe(head, h.cfg.Now())
	return safe, head, next
}

// FollowerCount returns how many followers Followers would return.
func (h *Hub) FollowerCount() int { return h.fl.count(h.cfg.Now()) }

// Pending returns up to limit of the followers for which position x is not
// yet in force (see Safe), and how many there are in all.
func (h *Hub) Pending(x int64, limit int) ([]FollowerState, int) {
	return h.fl.pending(x, limit, h.cfg.Now())
}

// FollowersChanged returns a channel closed at the next change of a
// follower or of the head.
func (h *Hub) FollowersChanged() <-chan struct{} {
	h.fl.mu.Lock()
	defer h.fl.mu.Unlock()
	return h.fl.changed
}
