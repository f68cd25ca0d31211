package ssf

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// deliveryRig is a Transmitter on a real SQLite store pushing to a real
// receiver, whose deliveries the test runs one at a time (as Run's scan
// would start them).
type deliveryRig struct {
	t   *testing.T
	st  *sqlite.Store
	tr  *Transmitter
	id  string
	now time.Time

	mu       sync.Mutex
	received []string    // the claims of each SET the receiver took
	onPost   func(n int) // called with the SET's number before answering
	answer   func() int  // the receiver's status (default 202)
	recv     *httptest.Server
}

func newDeliveryRig(t *testing.T) *deliveryRig {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &deliveryRig{t: t, st: st, now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	r.recv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.recv.Close)
	r.tr = New(st, signKeys{}, Config{Issuer: testIssuer, InsecurePush: true, Clock: testtime.NewClock(r.now),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	cfg, err := r.tr.Create(ctx, StreamRequest{Delivery: &DeliveryConfig{Method: MethodPush, EndpointURL: r.recv.URL},
		EventsRequested: ptr([]string{EventTokenClaimsChange})})
	if err != nil {
		t.Fatal(err)
	}
	r.id = cfg.StreamID
	return r
}

// serve records the claims of a SET (signKeys "signs" by prefixing).
func (r *deliveryRig) serve(w http.ResponseWriter, req *http.Request) {
	var set struct {
		Events map[string]struct {
			Claims map[string]string `json:"claims"`
		} `json:"events"`
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Errorf("receiver: %v", err)
	}
	if err := json.Unmarshal(bytes.TrimPrefix(b, []byte("signed.")), &set); err != nil {
		r.t.Errorf("receiver: %q: %v", b, err)
	}
	r.mu.Lock()
	r.received = append(r.received, set.Events[EventTokenClaimsChange].Claims["role"])
	count, onPost := len(r.received), r.onPost
	r.mu.Unlock()
	if onPost != nil {
		onPost(count)
	}
	w.WriteHeader(http.StatusAccepted)
}

// changeClaims logs an access cutoff carrying {"role": role}.
func (r *deliveryRig) changeClaims(role string) {
	r.t.Helper()
	claims, _ := json.Marshal(map[string]string{"role": role})
	if _, err := r.st.RevokeSubject(context.Background(), store.SubjectRevocation{Subject: "alice", Claims: claims,
		Now: r.now, ExpiresAt: r.now.Add(time.Hour), Actor: store.Actor{By: "test"}}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *deliveryRig) setStatus(status string) {
	r.t.Helper()
	if _, err := r.tr.SetStatus(context.Background(), StatusBody{StreamID: r.id, Status: status}); err != nil {
		r.t.Fatal(err)
	}
}

// deliver runs one delivery of the stream to its end.
func (r *deliveryRig) deliver() {
	r.tr.mu.Lock()
	r.tr.running[r.id] = true
	r.tr.mu.Unlock()
	r.tr.deliveries.Add(1)
	r.tr.deliver(context.Background(), r.id)
}

func (r *deliveryRig) roles() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.received...)
}

// TestDeliveryStopsAtAChange: a stream disabled while a delivery is
// running sends nothing logged after the change, even though the delivery
// read the stream as enabled; enabled again, it starts at the head, and
// the running delivery cannot move its cursor back.
func TestDeliveryStopsAtAChange(t *testing.T) {
	r := newDeliveryRig(t)
	r.changeClaims("x")
	// While the receiver handles x: disable, log y, enable again.
	r.mu.Lock()
	r.onPost = func(n int) {
		if n == 1 {
			r.setStatus(StatusDisabled)
			r.changeClaims("y")
			r.setStatus(StatusEnabled)
		}
	}
	r.mu.Unlock()
	r.deliver()
	r.mu.Lock()
	r.onPost = nil
	r.mu.Unlock()
	if got := r.roles(); len(got) != 1 || got[0] != "x" {
		t.Fatalf("delivered %q, want x alone: y was logged while the stream was disabled", got)
	}
	st, err := r.st.Stream(context.Background(), r.id)
	if err != nil {
		t.Fatal(err)
	}
	if head, _ := r.st.Head(context.Background()); st.Cursor != head || st.LeaseOwner != "" {
		t.Errorf("after the delivery: cursor %d (head %d), lease %q; want the head the enable set, lease free", st.Cursor, head, st.LeaseOwner)
	}
	r.deliver() // the scan a change wakes: nothing pending
	r.changeClaims("z")
	r.deliver()
	if got := r.roles(); len(got) != 2 || got[1] != "z" {
		t.Errorf("delivered %q, want x then z", got)
	}
}

// TestDeliveryOfAStreamPausedAfterTheScan: a delivery started for a stream
// the scan listed as enabled, but paused before the lease was taken, sends
// nothing and gives the lease up; enabled again, it sends what was held.
func TestDeliveryOfAStreamPausedAfterTheScan(t *testing.T) {
	r := newDeliveryRig(t)
	r.changeClaims("x")
	r.setStatus(StatusPaused)
	r.deliver()
	if got := r.roles(); len(got) != 0 {
		t.Fatalf("a paused stream delivered %q", got)
	}
	st, err := r.st.Stream(context.Background(), r.id)
	if err != nil {
		t.Fatal(err)
	}
	if st.LeaseOwner != "" || st.Status != StatusPaused {
		t.Errorf("after the delivery: lease %q, status %s; want the lease free, still paused", st.LeaseOwner, st.Status)
	}
	r.setStatus(StatusEnabled)
	r.deliver()
	if got := r.roles(); len(got) != 1 || got[0] != "x" {
		t.Errorf("after enabling: delivered %q, want the held x", got)
	}
}
