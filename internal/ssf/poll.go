package ssf

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/store"
)

// PollRequest is the body of a poll (RFC 8936 §2.4).
type PollRequest struct {
	MaxEvents         *int                `json:"maxEvents"`
	ReturnImmediately bool                `json:"returnImmediately"`
	Ack               []string            `json:"ack"`
	SetErrs           map[string]SetError `json:"setErrs"`
}

// SetError is a receiver's report of a SET it could not accept.
type SetError struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

// PollResponse is the answer to a poll (RFC 8936 §2.5).
type PollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable,omitempty"`
}

// Poll limits.
const (
	defaultMaxEvents = 100
	maxMaxEvents     = 1000
	maxAcks          = 10000
	// longPoll is how long a poll with returnImmediately false waits for
	// an event; the receiver polls again after an empty answer.
	longPoll = 25 * time.Second
)

// Poller is who polls: the ID of the API key the request was
// authenticated with.
type Poller struct {
	KeyID string
}

// mayPoll reports whether p may poll st: the stream's poll key alone (its
// receiver; every poll stream names one, see apply). Polling acknowledges,
// and so deletes, the receiver's events: no other holder of an API key may
// do it.
func (p Poller) mayPoll(st store.Stream) bool {
	return st.PollKey != "" && p.KeyID == st.PollKey
}

// Poll answers a poll of stream id by p: it records the acknowledgements
// (and the SETs reported in setErrs, which are not sent again either),
// then returns up to maxEvents SETs not acknowledged yet, oldest first.
// Without returnImmediately it waits up to longPoll for one. SETs returned
// but not acknowledged are returned again by the next poll. A poller other
// than the stream's (see Poller) is refused with 403 access_denied (RFC
// 8936 §2.4.4).
func (t *Transmitter) Poll(ctx context.Context, id string, p Poller, req PollRequest) (PollResponse, error) {
	max := defaultMaxEvents
	if req.MaxEvents != nil {
		if *req.MaxEvents < 0 || *req.MaxEvents > maxMaxEvents {
			return PollResponse{}, badRequest("maxEvents must be from 0 to %d", maxMaxEvents)
		}
		max = *req.MaxEvents
	}
	if len(req.Ack)+len(req.SetErrs) > maxAcks {
		return PollResponse{}, badRequest("at most %d acknowledgements per poll", maxAcks)
	}
	st, err := t.stream(ctx, id)
	if err != nil {
		return PollResponse{}, err
	}
	if !p.mayPoll(st) {
		return PollResponse{}, &Error{Status: http.StatusForbidden, Code: "access_denied",
			Description: "this API key may not poll this stream (tegata_poll_key names the one that may)"}
	}
	if st.Method != MethodPoll {
		return PollResponse{}, badRequest("stream %s is delivered by push, not poll", id)
	}
	for jti, e := range req.SetErrs {
		t.cfg.Logger.Warn("event stream: receiver rejected a SET", "stream", id, "jti", jti, "err", e.Err,
			"description", truncate(e.Description, 200))
	}
	wake, stop := t.subscribe()
	defer stop()
	deadline, expired := clock.NewTimer(t.cfg.Clock, longPoll)
	defer deadline.Stop()
	acks := append(slices.Clone(req.Ack), mapKeys(req.SetErrs)...)
	for {
		res, err := t.pollOnce(ctx, id, acks, max)
		acks = nil
		if err != nil || len(res.Sets) > 0 || max == 0 || req.ReturnImmediately {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, nil
		case <-expired:
			return res, nil
		case <-wake:
		case <-clock.After(t.cfg.Clock, scanEvery): // another node's verification request wakes no one here
		}
	}
}

func mapKeys(m map[string]SetError) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// pollOnce records acks, moves the cursor over what is acknowledged, and
// returns what is pending.
func (t *Transmitter) pollOnce(ctx context.Context, id string, acks []string, max int) (PollResponse, error) {
	seqs, verification := t.parseAcks(id, acks)
	st, held, err := t.st.Acknowledge(ctx, id, seqs, verification)
	if err != nil {
		return PollResponse{}, t.mapErr(id, err)
	}
	res := PollResponse{Sets: map[string]string{}}
	if st.Status != StatusEnabled {
		return res, nil // paused: held; disabled: nothing
	}
	if err := t.advance(ctx, &st, held); err != nil {
		return PollResponse{}, err
	}
	if st.VerifyPending() && max > 0 {
		if err := t.addVerification(ctx, st, res.Sets); err != nil {
			return PollResponse{}, err
		}
	}
	more, err := t.collect(ctx, st, held, max-len(res.Sets), res.Sets)
	res.MoreAvailable = more
	return res, err
}

// parseAcks maps the jtis of this stream's SETs to log seqs and the latest
// verification; anything else is ignored (RFC 8936: an unknown jti is not
// an error).
func (t *Transmitter) parseAcks(id string, jtis []string) ([]int64, int64) {
	var seqs []int64
	var verification int64
	for _, j := range jtis {
		rest, ok := strings.CutPrefix(j, id+".")
		if !ok {
			continue
		}
		if v, isV := strings.CutPrefix(rest, "v"); isV {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > verification {
				verification = n
			}
			continue
		}
		if n, err := strconv.ParseInt(rest, 10, 64); err == nil && n > 0 {
			seqs = append(seqs, n)
		}
	}
	return seqs, verification
}

// advance moves the cursor over the entries whose events are all
// acknowledged (or that have none for this stream), up to the first event
// still pending, counting the events it passes as delivered: for a poll
// stream, delivered means acknowledged by the receiver.
func (t *Transmitter) advance(ctx context.Context, st *store.Stream, held []int64) error {
	want := delivered(st.Events)
	to, acked := st.Cursor, int64(0)
walk:
	for {
		es, err := t.st.DetailedEntriesAfter(ctx, to, 1000)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			if ev, ok := eventOf(e, t.cfg.Issuer); ok && slices.Contains(want, ev.typ) {
				if _, ok := slices.BinarySearch(held, e.Seq); !ok {
					break walk
				}
				acked++
			}
			to = e.Seq
		}
	}
	if to == st.Cursor {
		return nil
	}
	if err := t.st.MoveCursor(ctx, st.ID, st.Cursor, to, acked); err != nil {
		return err
	}
	st.Cursor, st.Delivered = to, st.Delivered+acked
	return nil
}

func (t *Transmitter) addVerification(ctx context.Context, st store.Stream, sets map[string]string) error {
	payload, err := verificationSET(t.cfg.Issuer, st, t.cfg.Clock.Now())
	if err != nil {
		return err
	}
	set, err := t.keys.SignEvent(ctx, payload)
	if err != nil {
		return err
	}
	sets[verificationJTI(st.ID, st.VerifySeq)] = set
	return nil
}

// collect adds up to max pending SETs after the cursor and reports whether
// more are pending.
func (t *Transmitter) collect(ctx context.Context, st store.Stream, held []int64, max int, sets map[string]string) (bool, error) {
	want := delivered(st.Events)
	after := st.Cursor
	for {
		es, err := t.st.DetailedEntriesAfter(ctx, after, 1000)
		if err != nil || len(es) == 0 {
			return false, err
		}
		for _, e := range es {
			after = e.Seq
			ev, ok := eventOf(e, t.cfg.Issuer)
			if _, acked := slices.BinarySearch(held, e.Seq); !ok || acked || !slices.Contains(want, ev.typ) {
				continue
			}
			if max <= 0 {
				return true, nil
			}
			payload, err := eventSET(t.cfg.Issuer, st, e, ev, t.cfg.Clock.Now())
			if err != nil {
				return false, err
			}
			set, err := t.keys.SignEvent(ctx, payload)
			if err != nil {
				return false, err
			}
			sets[eventJTI(st.ID, e.Seq)] = set
			max--
		}
	}
}
