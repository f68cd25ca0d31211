package feed_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
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
// sent yet.
func TestFanOutKeepsOrderUnderChurn(t *testing.T) {
	t.Parallel()
	const streams, entries = 24, 600
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
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour, WriteTimeout: time.Minute})
	srv := httptest.NewUnstartedServer(hub)
	srv.Listener = smallSendBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	_, d := openSlow(t, srv.URL+feed.Path)
	wantEvent(t, d, feed.EventHeartbeat, "0")
	pad := strings.Repeat("p", 900)
	n := 0
	for hub.FanOutRests() == 0 {
		if n++; n > 1000 {
			t.Fatal("1,000 batches of 1 KB to a client that does not read, none left to its stream")
		}
		waitFor(t, "the stream parked", func() bool { return hub.ParkedStreams() == 1 })
		log.appendPadded(1, live, pad)
		waitFor(t, "the batch written", func() bool { return hub.FanOutWrites()+hub.FanOutRests() == int64(n) })
	}
	if err := readInOrder(d, int64(n)); err != nil {
		t.Fatal(err)
	}
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
