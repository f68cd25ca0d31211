package ssf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/store"
)

// Notifier wakes the push loop when the log may have grown
// (store.Notifier).
type Notifier interface {
	Subscribe() (wake <-chan struct{}, stop func())
}

// Run delivers push streams until ctx ends. Every node runs it; the lease
// in the store makes one node at a time deliver a given stream.
func (t *Transmitter) Run(ctx context.Context, n Notifier) error {
	var logWake <-chan struct{}
	if n != nil {
		w, stop := n.Subscribe()
		defer stop()
		logWake = w
	}
	own, stop := t.subscribe()
	defer stop()
	tick := clock.NewTicker(t.cfg.Clock, scanEvery)
	defer tick.Stop()
	var later <-chan time.Time // a scan put off after a log wake-up
	for {
		pushing := t.scan(ctx)
		scanned := t.cfg.Clock.Now()
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				t.deliveries.Wait() // each releases its lease for the next node
				return nil
			case <-logWake:
				t.wake() // long polls of this node too
				select {
				case <-own: // that wake-up, not a change of the streams
				default:
				}
				// Under load the log grows with every batch, hundreds of
				// times a second: a scan per logScanGap is enough for push
				// delivery and spares the store a listing per commit.
				if d := logScanGap - t.cfg.Clock.Now().Sub(scanned); d > 0 {
					if later == nil {
						later = clock.After(t.cfg.Clock, d)
					}
					continue
				}
				waiting = false
			case <-later:
				waiting = false
			case <-own:
				waiting = false
			case <-tick.C:
				waiting = !pushing && t.cfg.Clock.Now().Sub(scanned) < idleScanEvery
			}
		}
		later = nil
	}
}

// logScanGap is the least time between two scans started by log wake-ups.
const logScanGap = 20 * time.Millisecond

// scan starts delivering every push stream that has something to send, is
// due, and is not leased by another node. It reports false when it found
// no push stream enabled, so that Run scans less often (idleScanEvery).
func (t *Transmitter) scan(ctx context.Context) (pushing bool) {
	streams, err := t.st.ListStreams(ctx)
	if err != nil {
		if ctx.Err() == nil {
			t.cfg.Logger.Warn("event streams: cannot list", "err", err)
		}
		return true // unknown: try again at the next tick
	}
	if !slices.ContainsFunc(streams, func(st store.Stream) bool { return st.Method == MethodPush && st.Status == StatusEnabled }) {
		return false // no push stream: the head is not needed
	}
	head, err := t.st.Head(ctx)
	if err != nil {
		return true
	}
	now := t.cfg.Clock.Now()
	for _, st := range streams {
		if st.Method != MethodPush || st.Status != StatusEnabled || (st.Cursor >= head && !st.VerifyPending()) ||
			st.NextAttempt.After(now) || (st.LeaseOwner != "" && st.LeaseOwner != t.node && st.LeaseUntil.After(now)) {
			continue
		}
		t.mu.Lock()
		busy := t.running[st.ID]
		t.running[st.ID] = true
		t.mu.Unlock()
		if !busy {
			t.deliveries.Add(1)
			go t.deliver(ctx, st.ID)
		}
	}
	return true
}

// deliver sends a stream's pending SETs in log order while this node holds
// its lease. Progress is saved after each SET the receiver accepted, so a
// crash re-sends at most the SET in flight; a failure is retried with
// backoff, by whichever node next takes the lease.
func (t *Transmitter) deliver(ctx context.Context, id string) {
	var changed bool
	defer func() {
		t.mu.Lock()
		delete(t.running, id)
		t.mu.Unlock()
		if changed {
			// The scan that the change woke skipped the stream while this
			// delivery ran: scan again, to deliver under the new settings.
			t.wake()
		}
		t.deliveries.Done()
	}()
	st, err := t.st.LeaseStream(ctx, id, t.node, t.cfg.Clock.Now(), t.cfg.Clock.Now().Add(leaseTTL))
	if err != nil {
		return // another node delivers it, or it is gone
	}
	p := store.Progress{Cursor: st.Cursor, VerifySent: st.VerifySent}
	if st.Status != StatusEnabled || st.Method != MethodPush {
		// Paused, disabled or made a poll stream between the scan's listing
		// and the lease: nothing to send. A change back goes through
		// UpdateStream, which ends the lease anyway.
		p.Attempts, p.NextAttempt, p.LastError = st.Attempts, st.NextAttempt, st.LastError
		_ = t.release(ctx, id, p)
		return
	}
	if err := t.push(ctx, st, &p); err != nil {
		changed = errors.Is(err, store.ErrLeaseLost)
		t.fail(ctx, st, p, err)
		return
	}
	p.Attempts, p.LeaseUntil = 0, time.Time{}
	err = t.release(ctx, id, p)
	changed = errors.Is(err, store.ErrLeaseLost)
	if err != nil && !changed {
		t.cfg.Logger.Warn("event stream: cannot save progress", "stream", id, "err", err)
	}
}

// release saves progress with the lease given up, even when ctx ended as
// the push did (the node stopping): a save on the cancelled context would
// fail and leave the lease held for its whole term, so no other node could
// deliver meanwhile.
func (t *Transmitter) release(ctx context.Context, id string, p store.Progress) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	p.LeaseUntil = time.Time{}
	return t.st.SaveProgress(ctx, id, t.node, p)
}

// push sends the pending verification, then the events after the cursor,
// saving p after each accepted SET.
//
// p is also saved after each read of the log, before anything read is
// sent: a change of the stream (disabled, paused, other events requested,
// enabled again at the head) ends the lease (store.Streams.UpdateStream),
// so that save fails with store.ErrLeaseLost for entries logged after the
// change, and st, read when the lease was taken, never sends them. An entry
// logged before a change may still be sent after it: it was read before.
func (t *Transmitter) push(ctx context.Context, st store.Stream, p *store.Progress) error {
	auth, err := t.authHeader(st)
	if err != nil {
		return err
	}
	if st.VerifyPending() {
		payload, err := verificationSET(t.cfg.Issuer, st, t.cfg.Clock.Now())
		if err != nil {
			return err
		}
		if err := t.post(ctx, st, auth, payload); err != nil {
			return err
		}
		p.VerifySent = st.VerifySeq
		if err := t.save(ctx, st.ID, p); err != nil {
			return err
		}
	}
	want := delivered(st.Events)
	for {
		es, err := t.st.DetailedEntriesAfter(ctx, p.Cursor, 100)
		if err != nil || len(es) == 0 {
			return err
		}
		if err := t.save(ctx, st.ID, p); err != nil {
			return err
		}
		for _, e := range es {
			if lost := e.Seq - p.Cursor - 1; lost > 0 {
				// Counted once: the cursor moves past the gap with the count.
				p.Lost += lost
				t.cfg.Logger.Warn("event stream: entries pruned before delivery (past the retention)",
					"stream", st.ID, "after", p.Cursor, "lost", lost)
				p.Cursor = e.Seq - 1
			}
			if ev, ok := eventOf(e, t.cfg.Issuer); ok && slices.Contains(want, ev.typ) {
				payload, err := eventSET(t.cfg.Issuer, st, e, ev, t.cfg.Clock.Now())
				if err != nil {
					return err
				}
				if err := t.post(ctx, st, auth, payload); err != nil {
					return err
				}
				p.Delivered++
				p.Cursor = e.Seq
				if err := t.save(ctx, st.ID, p); err != nil {
					return err
				}
				continue
			}
			p.Cursor = e.Seq
		}
	}
}

// save records progress and extends the lease; the counts it adds are
// reset, having been added.
func (t *Transmitter) save(ctx context.Context, id string, p *store.Progress) error {
	p.LeaseUntil = t.cfg.Clock.Now().Add(leaseTTL)
	if err := t.st.SaveProgress(ctx, id, t.node, *p); err != nil {
		return err
	}
	p.Delivered, p.Lost = 0, 0
	return nil
}

// fail records a failed delivery and when to try again, and releases the
// lease so that any node may retry then.
func (t *Transmitter) fail(ctx context.Context, st store.Stream, p store.Progress, cause error) {
	if errors.Is(cause, store.ErrLeaseLost) {
		return
	}
	if ctx.Err() != nil {
		// Stopping: keep what was delivered and hand the stream over at
		// once (the SET in flight, if any, is sent again by the next node).
		p.Attempts, p.NextAttempt, p.LastError = st.Attempts, st.NextAttempt, st.LastError
		_ = t.release(ctx, st.ID, p)
		return
	}
	p.Attempts = st.Attempts + 1
	p.NextAttempt = t.cfg.Clock.Now().Add(backoff(p.Attempts))
	p.LastError = truncate(cause.Error(), 500)
	t.cfg.Logger.Warn("event stream: delivery failed; will retry", "stream", st.ID,
		"attempt", p.Attempts, "retry_at", p.NextAttempt.UTC(), "err", cause)
	if err := t.release(ctx, st.ID, p); err != nil {
		t.cfg.Logger.Warn("event stream: cannot save progress", "stream", st.ID, "err", err)
	}
}

// backoff doubles from one second up to maxBackoff, with ±20% jitter so
// that streams failing together do not retry together.
func backoff(attempts int) time.Duration {
	d := maxBackoff
	if attempts < 20 {
		d = min(time.Second<<(attempts-1), maxBackoff)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (t *Transmitter) authHeader(st store.Stream) (string, error) {
	if st.AuthHeader == nil {
		return "", nil
	}
	h, err := t.keys.OpenReceiverSecret(st.AuthHeader, st.ID)
	if err != nil {
		return "", fmt.Errorf("open the receiver's authorization header: %w", err)
	}
	return string(h), nil
}

// post sends one SET (RFC 8935 §2): any 2xx is acceptance (202 is the
// standard one). Anything else, including a 400 the receiver explains, is
// retried: a receiver whose key cache or credentials are being fixed must
// not lose the events meanwhile; last_error shows why.
func (t *Transmitter) post(ctx context.Context, st store.Stream, auth string, payload []byte) error {
	set, err := t.keys.SignEvent(ctx, payload)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*pushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.EndpointURL, strings.NewReader(set))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/secevent+jwt")
	req.Header.Set("Accept", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", st.EndpointURL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode/100 == 2 {
		return nil
	}
	return fmt.Errorf("POST %s: %s %s", st.EndpointURL, res.Status, strings.TrimSpace(string(body)))
}
