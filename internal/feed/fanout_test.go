package feed_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
)

// TestFanOutWritesParkedStreams: streams that are caught up wait parked,
// and the hub writes each new batch to them itself, without their
// goroutines: every batch reaches every stream once, in order, each
// written by the fan-out.
func TestFanOutWritesParkedStreams(t *testing.T) {
	t.Parallel()
	const streams, batches = 40, 5
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour})
	srv := serve(t, hub)
	ds := make([]*feed.Decoder, streams)
	for i := range ds {
		hdr := map[string]string{"Tegata-Verifier": fmt.Sprintf("id=v%d&stale_after_ms=10000", i)}
		if i%2 == 0 {
			hdr = nil // unnamed: no ask, a heartbeat every tick
		}
		_, ds[i] = open(t, srv.URL+feed.Path, hdr)
		wantEvent(t, ds[i], feed.EventHeartbeat, "0")
	}
	for b := int64(1); b <= batches; b++ {
		waitFor(t, fmt.Sprintf("%d streams parked", streams), func() bool { return hub.ParkedStreams() == streams })
		log.appendN(2, live)
		for _, d := range ds {
			wantEntries(t, d, 2*b-1, 2*b)
		}
	}
	waitFor(t, "every batch written by the fan-out", func() bool { return hub.FanOutWrites() == streams*batches })
}

// TestFanOutWritesTheAskWithTheEntries: a parked named stream gets the ask
// of a confirmation waiting for a position the hub has not read yet right
// after the entries up to it, from the fan-out; an unnamed one never.
func TestFanOutWritesTheAskWithTheEntries(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour})
	srv := serve(t, hub)
	_, named := open(t, srv.URL+feed.Path, map[string]string{"Tegata-Verifier": "id=v1&stale_after_ms=10000"})
	_, unnamed := open(t, srv.URL+feed.Path, nil)
	wantEvent(t, named, feed.EventHeartbeat, "0")
	wantEvent(t, unnamed, feed.EventHeartbeat, "0")
	waitFor(t, "both streams parked", func() bool { return hub.ParkedStreams() == 2 })
	hub.Ask(2) // wakes no stream: the hub has not read 2
	log.appendN(1, live)
	wantEntries(t, named, 1)
	wantEntries(t, unnamed, 1)
	waitFor(t, "both streams parked again", func() bool { return hub.ParkedStreams() == 2 })
	log.appendN(1, live)
	wantEntries(t, named, 2)
	if ev := next(t, named); ev.Type != feed.EventAsk || string(ev.Data) != `{"position":2}` {
		t.Fatalf("after the entries: %s %s, want the ask for 2", ev.Type, ev.Data)
	}
	log.appendN(1, live)
	wantEntries(t, unnamed, 2, 3) // no ask in between
	wantEntries(t, named, 3)      // and no second ask
	waitFor(t, "six writes of the fan-out", func() bool { return hub.FanOutWrites() == 6 })
}

// TestParkedStreamsWakeForNodes: what the fan-out does not write (a nodes
// event, a heartbeat falling due) wakes a parked stream, which writes it.
func TestParkedStreamsWakeForNodes(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour})
	srv := serve(t, hub)
	_, d := open(t, srv.URL+feed.Path, nil)
	wantEvent(t, d, feed.EventHeartbeat, "0")
	waitFor(t, "the stream parked", func() bool { return hub.ParkedStreams() == 1 })
	hub.SetNodes([]string{"https://a.example.com"})
	wantEvent(t, d, feed.EventNodes, "0")
	waitFor(t, "the stream parked again", func() bool { return hub.ParkedStreams() == 1 })
	log.appendN(1, live)
	wantEntries(t, d, 1)
	waitFor(t, "one write of the fan-out", func() bool { return hub.FanOutWrites() == 1 })
}

// TestFanOutKeepsOrderUnderChurn: many streams, named and unnamed, with
// heartbeats every few milliseconds and batches of every size arriving
// back to back, so that streams are parked, woken, written by the fan-out
// and by their goroutines in every order: each gets every entry once, in
// order, with no heartbeat claiming a position before an entry it has not
// sent yet. There are more streams than two fan-out workers take at a
// time (fanBatch), so that with GOMAXPROCS 2 or more several write at once.
func TestFanOutKeepsOrderUnderChurn(t *testing.T) {
	t.Parallel()
	const streams, entries = 72, 600
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: 3 * time.Millisecond})
	srv := serve(t, hub)
	ds := make([]*feed.Decoder, streams)
	for i := range ds {
		var hdr map[string]string
		if i%3 != 0 {
			hdr = map[string]string{"Tegata-Verifier": fmt.Sprintf("id=v%d&stale_after_ms=%d", i, 2000+i*500)}
		}
		_, ds[i] = open(t, srv.URL+feed.Path, hdr)
	}
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for _, d := range ds {
		wg.Go(func() { errs <- readInOrder(d, entries) })
	}
	for n := int64(0); n < entries; {
		k := min(entries-n, int64(1+rand.IntN(4)))
		if rand.IntN(10) == 0 {
			k = min(entries-n, int64(1+rand.IntN(60)))
		}
		log.appendN(int(k), live)
		n += k
		if rand.IntN(3) == 0 {
			waitFor(t, "a stream parked", func() bool { return hub.ParkedStreams() > 0 })
		}
		if n%100 < k && rand.IntN(2) == 0 {
			hub.Ask(n + int64(rand.IntN(3)))
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if hub.FanOutWrites() == 0 {
		t.Error("the fan-out wrote to no stream")
	}
}

// readInOrder reads a stream until it has had entries 1..n, each once and
// in order, and no heartbeat beyond the entries it had.
func readInOrder(d *feed.Decoder, n int64) error {
	var last int64
	for last < n {
		ev, err := d.Next()
		if err != nil {
			return fmt.Errorf("Next() after seq %d = %v", last, err)
		}
		switch ev.Type {
		case feed.EventRevocations:
			es, err := feed.ParseLines(ev.Data)
			if err != nil {
				return fmt.Errorf("revocations %q: %v", ev.Data, err)
			}
			for _, e := range es {
				if e.Seq != last+1 {
					return fmt.Errorf("entry %d after %d", e.Seq, last)
				}
				last = e.Seq
			}
		case feed.EventHeartbeat:
			var pos int64
			if _, err := fmt.Sscan(ev.ID, &pos); err != nil || pos > last {
				return fmt.Errorf("heartbeat id %q after entry %d", ev.ID, last)
			}
		}
	}
	return nil
}

// TestFanOutRestWrittenByTheStream: a batch the socket does not take whole
// from the fan-out (a client slow to read) is finished by the stream's
// goroutine, woken for it, before anything else: the client, reading
// again, gets every entry once and in order, without any further event
// to push the rest out.
func TestFanOutRestWrittenByTheStream(t *testing.T) {
	t.Parallel()
	hub, log, d := slowStream(t)
	n := fillUntilRest(t, hub, log)
	if err := readInOrder(d, n); err != nil {
		t.Fatal(err)
	}
}

// TestFanOutAfterASlowClient: batches that come while a stream's goroutine
// finishes a fan-out's rest (its client still not reading) are written by
// the goroutine, after the rest and in order; once the client has read
// them all, the stream parks again and the fan-out writes the next batch.
func TestFanOutAfterASlowClient(t *testing.T) {
	t.Parallel()
	hub, log, d := slowStream(t)
	n := fillUntilRest(t, hub, log)
	const more = 30
	pad := strings.Repeat("p", 900)
	for range more {
		log.appendPadded(1, live, pad)
	}
	if err := readInOrder(d, n+more); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stream parked again", func() bool { return hub.ParkedStreams() == 1 })
	fanned := hub.FanOutWrites()
	log.appendN(1, live)
	wantEntries(t, d, n+more+1)
	waitFor(t, "the batch written by the fan-out", func() bool { return hub.FanOutWrites() == fanned+1 })
}

// slowStream opens a stream with small socket buffers at both ends, whose
// client reads only when the test does, and reads its first heartbeat.
func slowStream(t *testing.T) (*feed.Hub, *memLog, *feed.Decoder) {
	t.Helper()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour, WriteTimeout: time.Minute})
	srv := httptest.NewUnstartedServer(hub)
	srv.Listener = smallSendBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	_, d := openSlow(t, srv.URL+feed.Path)
	wantEvent(t, d, feed.EventHeartbeat, "0")
	return hub, log, d
}

// fillUntilRest appends 1 KB entries one batch at a time, each written to
// the parked stream by the fan-out, until one write leaves a rest to the
// stream's goroutine, and returns how many it appended.
func fillUntilRest(t *testing.T, hub *feed.Hub, log *memLog) int64 {
	t.Helper()
	pad := strings.Repeat("p", 900)
	n := int64(0)
	for hub.FanOutRests() == 0 {
		if n++; n > 1000 {
			t.Fatal("1,000 batches of 1 KB to a client that does not read, none left to its stream")
		}
		waitFor(t, "the stream parked", func() bool { return hub.ParkedStreams() == 1 })
		log.appendPadded(1, live, pad)
		waitFor(t, "the batch written", func() bool { return hub.FanOutWrites()+hub.FanOutRests() == n })
	}
	return n
}

// smallSendBuffers gives the connections it accepts a small send buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		err = nc.(*net.TCPConn).SetWriteBuffer(4096)
	}
	return nc, err
}

// TestFanOutLeavesABatchEndingInASkipToTheStream: a batch whose last seqs
// carry no entry (expired, or pruned) moves a stream's position past its
// last event, which only a heartbeat tells the follower. The fan-out,
// which writes no heartbeat, leaves such a batch to the parked stream's
// goroutine: the heartbeat at the batch's end comes at once, ahead of the
// ask for it, which the follower could not answer otherwise.
func TestFanOutLeavesABatchEndingInASkipToTheStream(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour})
	srv := serve(t, hub)
	_, d := open(t, srv.URL+feed.Path, map[string]string{"Tegata-Verifier": "id=v1&stale_after_ms=10000"})
	wantEvent(t, d, feed.EventHeartbeat, "0")
	for i, tail := range []func(){
		func() { log.add(1, expired, "") },
		func() { log.skip(2) },
	} {
		head := hub.Head()
		waitFor(t, "the stream parked", func() bool { return hub.ParkedStreams() == 1 })
		log.silent.Store(true) // one batch: the entry and what follows it
		log.appendN(1, live)
		tail()
		log.silent.Store(false)
		end := head + 1 + int64(i+1)
		hub.Ask(end)
		log.wake()
		wantEntries(t, d, head+1)
		checkHeartbeat(t, wantEvent(t, d, feed.EventHeartbeat, strconv.FormatInt(end, 10)), end)
		if ev := next(t, d); ev.Type != feed.EventAsk || string(ev.Data) != fmt.Sprintf(`{"position":%d}`, end) {
			t.Fatalf("after the heartbeat at %d: %s %s, want the ask for %d", end, ev.Type, ev.Data, end)
		}
	}
	if n := hub.FanOutWrites(); n != 0 {
		t.Errorf("FanOutWrites() = %d, want 0: every batch ended in a skip", n)
	}
}

// TestParkedStreamsThatEndLeaveTheHub: streams whose clients go away while
// they are parked, as batches arrive or after the last, leave the hub's
// parked streams at once (not at the next batch), and the others go on
// getting every entry once, in order, from the fan-out.
func TestParkedStreamsThatEndLeaveTheHub(t *testing.T) {
	t.Parallel()
	const streams, entries = 20, 200
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour})
	srv := serve(t, hub)
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	var gone []func() error
	for i := range streams {
		hdr := map[string]string{"Tegata-Verifier": fmt.Sprintf("id=v%d&stale_after_ms=10000", i)}
		resp, d := open(t, srv.URL+feed.Path, hdr)
		wantEvent(t, d, feed.EventHeartbeat, "0")
		if i%2 == 0 {
			gone = append(gone, resp.Body.Close)
			continue
		}
		wg.Go(func() { errs <- readInOrder(d, entries) })
	}
	waitFor(t, fmt.Sprintf("%d streams parked", streams), func() bool { return hub.ParkedStreams() == streams })
	for n := 0; n < entries; n += 2 {
		if len(gone) > 1 { // the last goes once no batch follows
			if err := gone[0](); err != nil {
				t.Fatal(err)
			}
			gone = gone[1:]
		}
		log.appendN(2, live)
	}
	wg.Wait()
	if err := gone[0](); err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	waitFor(t, fmt.Sprintf("%d streams parked", streams/2), func() bool { return hub.ParkedStreams() == streams/2 })
	if hub.FanOutWrites() == 0 {
		t.Error("the fan-out wrote to no stream")
	}
}
