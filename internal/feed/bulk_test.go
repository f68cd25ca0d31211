package feed_test

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// appendBulk appends n subject entries recorded at one instant, as a bulk
// revocation writes them, and wakes subscribers.
func (m *memLog) appendBulk(n int, exp time.Time) {
	m.mu.Lock()
	for i := range n {
		m.head++
		m.entries = append(m.entries, revocation.Entry{
			Seq: m.head, Kind: revocation.KindSubject, Subject: fmt.Sprint("bulk ", i), Generation: int64(1 + i%3),
			CreatedAt: exp.Add(-time.Hour), ExpiresAt: exp,
		})
	}
	m.mu.Unlock()
	m.wake()
}

// applyMany is the recorder as a Client's ApplyMany: Apply on each entry,
// up to the first refused.
func (r *recorder) applyMany(es []revocation.Entry) (int, error) {
	for i, e := range es {
		if err := r.apply(e); err != nil {
			return i, err
		}
	}
	return len(es), nil
}

// TestBulkReachesFollowers: a bulk revocation of 10,000 subjects reaches
// a follower from 0 and one whose set refuses an entry in the middle of
// an event (it resumes from the entry before, inside the bulk), each
// entry exactly once and in order; the events carry continuation lines and
// stay within their bounds; a stream opened at a position inside the bulk
// starts with a full line and goes on from there.
func TestBulkReachesFollowers(t *testing.T) {
	t.Parallel()
	const n = 10_000
	log := newMemLog()
	log.appendN(3, live) // sessions before it
	hub := startHub(t, log, feed.HubConfig{})
	srv := serve(t, hub)

	whole := &feed.Client{URLs: []string{srv.URL}}
	rec := &recorder{}
	set := revocation.NewSet(0)
	whole.ApplyMany = func(es []revocation.Entry) (int, error) {
		if _, err := set.ApplyMany(es); err != nil {
			return 0, err
		}
		return rec.applyMany(es)
	}
	whole.Reset = rec.reset
	startClientWith(t, whole)
	refusing := &feed.Client{URLs: []string{srv.URL}}
	rec2 := &recorder{failSeq: 3 + 4321, failLeft: 2}
	refusing.ApplyMany, refusing.Reset = rec2.applyMany, rec2.reset
	startClientWith(t, refusing)
	waitPosition(t, whole, 3)
	waitPosition(t, refusing, 3)

	log.appendBulk(n, live)
	waitPosition(t, whole, 3+n)
	waitPosition(t, refusing, 3+n)
	checkSeqs(t, "the follower from 0", rec.applied(), 3+n)
	checkSeqs(t, "the follower refusing an entry", rec2.applied(), 3+n)
	if set.Len() != 3+n {
		t.Fatalf("the set holds %d entries, want %d", set.Len(), 3+n)
	}
	if _, ok := set.Revoked("", "bulk 9999", 0); !ok {
		t.Fatal(`"bulk 9999" is not cut off`)
	}

	_, dec := open(t, srv.URL+feed.Path, map[string]string{"Last-Event-ID": strconv.Itoa(3 + 5000)})
	want := int64(3 + 5001)
	for want <= 3+n {
		ev := next(t, dec)
		if ev.Type != feed.EventRevocations {
			t.Fatalf("event %q at position %d, want revocations", ev.Type, want-1)
		}
		if bytes.HasPrefix(ev.Data, []byte("+")) || !bytes.Contains(ev.Data, []byte("\n+")) {
			t.Fatalf("event at %d starts %.30q; want a full line first, continuation lines after", want, ev.Data)
		}
		if len(ev.Data) > 40<<10 {
			t.Fatalf("event of %d bytes, want about 32 KiB at most", len(ev.Data))
		}
		es, err := feed.ParseLines(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Seq != want || e.Subject != fmt.Sprint("bulk ", want-4) || e.Generation != 1+(want-4)%3 || !e.ExpiresAt.Equal(live) {
				t.Fatalf("entry %+v, want seq %d of the bulk", e, want)
			}
			want++
		}
		if ev.ID != strconv.FormatInt(want-1, 10) {
			t.Fatalf("event id %s, want its last seq %d", ev.ID, want-1)
		}
	}
}
