package feed_test

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
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

// TestBulkSaysWhatFollows: a bulk revocation the hub reads from the log in
// batches goes in events that say, while more of it follows, the head the
// log had (the last event, and those of a single revocation, say nothing);
// a follower told so asks its consumer to make room (Grow) once, for the
// whole bulk, before it applies the bulk's first entry.
func TestBulkSaysWhatFollows(t *testing.T) {
	t.Parallel()
	const n = 10_000
	log := newMemLog()
	log.appendN(3, live)
	hub := startHub(t, log, feed.HubConfig{BatchSize: 1000})
	srv := serve(t, hub)

	var mu sync.Mutex
	var grows []string
	applied := 0
	c := &feed.Client{URLs: []string{srv.URL}, Reset: func() {}}
	c.ApplyMany = func(es []revocation.Entry) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		applied += len(es)
		return len(es), nil
	}
	c.Grow = func(k revocation.Kind, m int) {
		mu.Lock()
		defer mu.Unlock()
		grows = append(grows, fmt.Sprintf("%s %d after %d applied", k, m, applied))
	}
	startClientWith(t, c)
	_, dec := open(t, srv.URL+feed.Path, map[string]string{"Last-Event-ID": "3"})
	if ev := next(t, dec); ev.Type != feed.EventHeartbeat {
		t.Fatalf("first event %q, want a heartbeat", ev.Type)
	}
	waitPosition(t, c, 3)

	log.appendBulk(n, live)
	waitPosition(t, c, 3+n)
	mu.Lock()
	got := grows
	mu.Unlock()
	if want := []string{fmt.Sprintf("subject %d after 3 applied", n)}; !slices.Equal(got, want) {
		t.Fatalf("Grow calls %q, want %q", got, want)
	}

	said := 0
	for pos := int64(3); pos < 3+n; {
		ev := next(t, dec)
		if ev.Type != feed.EventRevocations {
			continue
		}
		pos, _ = strconv.ParseInt(ev.ID, 10, 64)
		switch {
		case pos < 3+n && ev.Head != 3+n:
			t.Fatalf("event up to %d says head %d, want %d", pos, ev.Head, 3+n)
		case pos == 3+n && ev.Head != 0:
			t.Fatalf("the bulk's last event says head %d, want none", ev.Head)
		case ev.Head != 0:
			said++
		}
	}
	if said < 9 {
		t.Fatalf("%d events said the head, want one per batch but the last at least (9)", said)
	}

	log.appendN(1, live)
	for {
		if ev := next(t, dec); ev.Type == feed.EventRevocations {
			if ev.Head != 0 {
				t.Fatalf("a single revocation's event says head %d, want none", ev.Head)
			}
			break
		}
	}
}
