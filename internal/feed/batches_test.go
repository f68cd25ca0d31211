package feed_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// TestBatches: entries come several per revocations event, the event's id
// being its last entry's seq, in order; an entry that continues the line
// before it (seq one higher, same kind and instants) as a continuation
// line.
func TestBatches(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(3000, live)
	log.appendSubject("a subject with spaces", live) // 3001
	log.appendN(2, live)
	srv := serve(t, startHub(t, log, feed.HubConfig{Heartbeat: time.Hour}))
	_, d := open(t, srv.URL+feed.Path+"?after=0&v=2", nil)
	var seqs []int64
	events := 0
	for len(seqs) < 3003 {
		ev := next(t, d)
		switch ev.Type {
		case feed.EventRevocations:
			events++
			lines := strings.Split(string(ev.Data), "\n")
			es, err := feed.ParseLines(ev.Data)
			if err != nil {
				t.Fatalf("revocations data: %v", err)
			}
			for _, e := range es {
				seqs = append(seqs, e.Seq)
				if e.Seq == 3001 && (e.Kind != revocation.KindSubject || e.Subject != "a subject with spaces") {
					t.Errorf("entry 3001 = %+v, want the subject with spaces", e)
				}
			}
			if ev.ID != strconv.FormatInt(seqs[len(seqs)-1], 10) {
				t.Fatalf("revocations event id %q, want its last seq %d", ev.ID, seqs[len(seqs)-1])
			}
			if want := "+0 "; len(seqs) == len(lines) && !strings.HasPrefix(lines[1], want) {
				t.Errorf("line %q, want it to start %q", lines[1], want)
			}
		default:
			t.Fatalf("event %s %s before all entries", ev.Type, ev.Data)
		}
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("entries came as seqs %v, want 1..3003 in order", seqs)
		}
	}
	if events < 2 || events > 3003/100 {
		t.Errorf("3003 entries came in %d revocations events, want a few, each of many entries", events)
	}
	wantEvent(t, d, feed.EventHeartbeat, "3003")
}

// TestClientAppliesBatches: a client applies every entry once, in
// order, across catch-up and live events, and resumes where it stopped
// when Apply fails midway through an event.
func TestClientAppliesBatches(t *testing.T) {
	t.Parallel()
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
