package feed_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// TestFormat2Batches: a client asking for format 2 gets several entries per
// revocations event, the event's id being its last entry's seq; an entry no
// line can carry comes as a revoke event of its own, in order.
func TestFormat2Batches(t *testing.T) {
	log := newMemLog()
	log.appendN(300, live)
	log.appendSubject("odd\nsubject", live) // 301: no line can carry it
	log.appendN(2, live)
	srv := serve(t, startHub(t, log, feed.HubConfig{Heartbeat: time.Hour}))
	_, d := open(t, srv.URL+feed.Path+"?after=0&v=2", nil)
	var seqs []int64
	events := 0
	for len(seqs) < 303 {
		ev := next(t, d)
		switch ev.Type {
		case feed.EventRevocations:
			events++
			lines := strings.Split(string(ev.Data), "\n")
			for _, l := range lines {
				seq, _ := strconv.ParseInt(strings.Fields(l)[0], 10, 64)
				seqs = append(seqs, seq)
			}
			if ev.ID != strconv.FormatInt(seqs[len(seqs)-1], 10) {
				t.Fatalf("revocations event id %q, want its last seq %d", ev.ID, seqs[len(seqs)-1])
			}
			if want := "2 session 1"; len(seqs) == len(lines) && !strings.HasPrefix(lines[1], want) {
				t.Errorf("line %q, want it to start %q", lines[1], want)
			}
		case feed.EventRevoke:
			seqs = append(seqs, checkSubjectEvent(t, ev, "odd\nsubject"))
		default:
			t.Fatalf("event %s %s before all entries", ev.Type, ev.Data)
		}
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("entries came as seqs %v, want 1..303 in order", seqs)
		}
	}
	if events < 2 || events > 303/10 {
		t.Errorf("303 entries came in %d revocations events, want a few, each of many entries", events)
	}
	wantEvent(t, d, feed.EventHeartbeat, "303")
}

func checkSubjectEvent(t *testing.T, ev feed.Event, sub string) int64 {
	t.Helper()
	e := decodeEntry(t, ev)
	if e.Kind != revocation.KindSubject || e.Subject != sub {
		t.Fatalf("revoke event %s, want subject %q", ev.Data, sub)
	}
	return e.Seq
}

// TestFormat1Unchanged: a client that does not ask for format 2 (a verifier
// of an older release) gets one revoke event per entry, as before.
func TestFormat1Unchanged(t *testing.T) {
	log := newMemLog()
	log.appendN(40, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour})
	srv := serve(t, hub)
	_, v2 := open(t, srv.URL+feed.Path+"?after=0&v=2", nil) // a format 2 connection open meanwhile
	next(t, v2)
	_, d := open(t, srv.URL+feed.Path+"?after=0", nil)
	for seq := 1; seq <= 40; seq++ {
		checkEntry(t, wantEvent(t, d, feed.EventRevoke, strconv.Itoa(seq)), int64(seq))
	}
	wantEvent(t, d, feed.EventHeartbeat, "40")
	log.appendN(3, live) // live, from the ring
	for seq := 41; seq <= 43; seq++ {
		checkEntry(t, wantEvent(t, d, feed.EventRevoke, strconv.Itoa(seq)), int64(seq))
	}
}

// TestClientOfOlderAuthority: a client follows a server that ignores v=2
// and sends format 1 (an authority of an older release).
func TestClientOfOlderAuthority(t *testing.T) {
	log := newMemLog()
	log.appendN(50, live)
	hub := startHub(t, log, feed.HubConfig{BatchSize: 9})
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		q.Del("v")
		r.URL.RawQuery = q.Encode()
		hub.ServeHTTP(w, r)
	}))
	c := &feed.Client{URLs: []string{srv.URL}}
	rec := startClient(t, c)
	waitPosition(t, c, 50)
	log.appendN(10, live)
	waitPosition(t, c, 60)
	checkSeqs(t, "client", rec.applied(), 60)
}

// TestClientAppliesBatches: a format 2 client applies every entry once, in
// order, across catch-up and live events, and resumes where it stopped
// when Apply fails midway through an event.
func TestClientAppliesBatches(t *testing.T) {
	log := newMemLog()
	log.appendN(1000, live)
	hub := startHub(t, log, feed.HubConfig{BatchSize: 333})
	srv := serve(t, hub)
	c := &feed.Client{URLs: []string{srv.URL}}
	rec := &recorder{}
	failed := false
	c.Apply = func(e revocation.Entry) error {
		if e.Seq == 1005 && !failed {
			failed = true
			return revocation.ErrFull
		}
		return rec.apply(e)
	}
	c.Reset = rec.reset
	startClientWith(t, c)
	waitPosition(t, c, 1000)
	log.appendN(20, live)
	waitPosition(t, c, 1020)
	checkSeqs(t, "client", rec.applied(), 1020)
	if !failed {
		t.Fatal("Apply never failed: the test did not test resuming")
	}
}
