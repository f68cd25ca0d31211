//go:build linux

package feed

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); sc.Close() })
	return sc.(*net.TCPConn), cc.(*net.TCPConn)
}

// fanConn is a caught-up stream at pos over nc, as the fan-out finds it.
func fanConn(t *testing.T, nc *net.TCPConn, pos int64) *conn {
	t.Helper()
	s := &rawStream{nc: nc, wc: nc, sc: directConn(nc)}
	if s.sc == nil {
		t.Fatal("directConn(*net.TCPConn) = nil")
	}
	h := NewHub(nil, HubConfig{})
	return &conn{hub: h, out: s, fan: s, wake: make(chan struct{}, 1), parkAt: fanning, pos: pos, told: pos}
}

// job is a fan-out of one entry after pos, whose event is data.
func job(pos int64, data []byte) *fanJob {
	return &fanJob{seg: segment{from: pos, to: pos + 1, data: data}, last: pos + 1}
}

// chunk is data as one chunk of a chunked body.
func chunk(data []byte) []byte {
	return append(append(append(strconv.AppendInt(nil, int64(len(data)), 16), "\r\n"...), data...), "\r\n"...)
}

// TestFanOutLeavesTheRestToTheStream: a fan-out write the socket does not
// take whole leaves its rest to the stream's next flush, which writes it
// before anything else: the client reads every chunk whole, in order.
func TestFanOutLeavesTheRestToTheStream(t *testing.T) {
	sc, cc := tcpPair(t)
	if err := sc.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if err := cc.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	c := fanConn(t, sc, 0)
	var want []byte
	for {
		data := bytes.Repeat([]byte{byte('a' + c.pos%26)}, 1000)
		var w fanWriter
		w.init(job(c.pos, data))
		want = append(want, chunk(data)...)
		wrote := w.send(c)
		if c.err != nil {
			t.Fatalf("send: stream error %v", c.err)
		}
		if !wrote {
			break
		}
		if c.pos > 10000 {
			t.Fatal("the socket took 10,000 writes of 1,000 bytes, none partly")
		}
	}
	if c.fan.idle() {
		t.Fatal("send() = false with nothing left to write")
	}
	more := []byte("data: after\n\n")
	c.write(more)
	want = append(want, chunk(more)...)
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(cc)
		got <- b
	}()
	if err := c.flush(); err != nil {
		t.Fatalf("flush() = %v", err)
	}
	sc.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("client read %d bytes, want %d in order (first difference at %d)", len(b), len(want), diffAt(b, want))
	}
}

func diffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestFanOutWriteErrorEndsTheStream: a fan-out write that fails leaves the
// error to the stream, whose next flush returns it.
func TestFanOutWriteErrorEndsTheStream(t *testing.T) {
	sc, cc := tcpPair(t)
	_ = cc.SetLinger(0)
	cc.Close() // reset
	if _, err := sc.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read() after the client's reset = nil")
	}
	c := fanConn(t, sc, 0)
	var w fanWriter
	w.init(job(0, []byte("data: x\n\n")))
	if w.send(c) {
		t.Fatal("send() to a reset connection = true, want false")
	}
	if c.err == nil || c.flush() == nil {
		t.Fatalf("after a failed fan-out write: err %v, flush() %v; want the write's error", c.err, c.flush())
	}
}

// TestFanOutSkipsAStreamItsGoroutineHolds: the fan-out never waits for a
// stream whose goroutine runs, nor writes to it.
func TestFanOutSkipsAStreamItsGoroutineHolds(t *testing.T) {
	sc, _ := tcpPair(t)
	c := fanConn(t, sc, 0)
	c.own.Lock()
	var w fanWriter
	w.init(job(0, []byte("data: x\n\n")))
	if w.send(c) || c.pos != 0 {
		t.Fatalf("send() to a held stream = true or moved it to %d; want false, at 0", c.pos)
	}
	c.own.Unlock()
	if !w.send(c) || c.pos != 1 {
		t.Fatalf("send() = false or left it at %d; want true, at 1", c.pos)
	}
}

// TestReparkAfterAChangeWakes: a stream the fan-out wrote to while the hub
// changed otherwise (here its nodes) missed that change's wake-up, taken
// as it was: it is woken, not parked again.
func TestReparkAfterAChangeWakes(t *testing.T) {
	sc, _ := tcpPair(t)
	c := fanConn(t, sc, 0)
	h := c.hub
	j := &fanJob{changed: h.changed}
	h.SetNodes([]string{"https://a.example.com"})
	h.repark(j, []*conn{c})
	select {
	case <-c.wake:
	default:
		t.Fatal("the stream was not woken")
	}
	if c.parkAt != notParked || len(h.parked) != 0 {
		t.Fatalf("after a change: at %d, %d parked; want not parked", c.parkAt, len(h.parked))
	}
	c.parkAt, j.changed = fanning, h.changed
	h.repark(j, []*conn{c})
	if c.parkAt != 0 || len(h.parked) != 1 {
		t.Fatalf("without a change: at %d, %d parked; want parked again", c.parkAt, len(h.parked))
	}
}

// TestFanOutDeclines: the fan-out writes nothing to a stream it finds due
// more than the batch, or no longer where the batch starts, and leaves it
// as it was, for its goroutine (woken) to write what it is due: a stream
// its goroutine moved past the batch meanwhile (the batch would go twice)
// or ended (it would follow the body's last chunk), one whose log was
// replaced, one whose write failed or left a rest, and one due a
// heartbeat or a nodes event.
func TestFanOutDeclines(t *testing.T) {
	tests := []struct {
		name string
		set  func(c *conn, j *fanJob)
	}{
		{"moved past the batch", func(c *conn, j *fanJob) { c.pos, c.told = 1, 1 }},
		{"ended", func(c *conn, j *fanJob) { c.quit = true }},
		{"write failed", func(c *conn, j *fanJob) { c.err = errors.New("feed: write: reset") }},
		{"log replaced", func(c *conn, j *fanJob) { j.gen = c.gen + 1 }},
		{"rest pending", func(c *conn, j *fanJob) { c.fan.pending = [][]byte{[]byte("rest")} }},
		{"heartbeat due", func(c *conn, j *fanJob) { c.beatNext, j.beat = 3, 3 }},
		{"nodes due", func(c *conn, j *fanJob) { j.nodes = c.nodesSent + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, cc := tcpPair(t)
			c := fanConn(t, sc, 0)
			c.follower = "v1"
			j := job(0, []byte("data: x\n\n"))
			j.want, j.ask = 1, []byte("event: ask\ndata: {\"position\":1}\n\n")
			tt.set(c, j)
			pos, told := c.pos, c.told
			var w fanWriter
			w.init(j)
			if w.send(c) {
				t.Fatal("send() = true, want false")
			}
			if c.pos != pos || c.told != told || c.asked != 0 {
				t.Errorf("send() moved the stream to pos %d told %d asked %d, want %d %d 0", c.pos, c.told, c.asked, pos, told)
			}
			sc.Close()
			if b, err := io.ReadAll(cc); err != nil || len(b) > 0 {
				t.Errorf("client read %q, %v; want nothing", b, err)
			}
		})
	}
}

// TestFanOutWritesTheAsk: a named stream not yet asked for a position the
// batch reaches gets the ask after the batch, in its chunk, and is not
// asked again with the next batch.
func TestFanOutWritesTheAsk(t *testing.T) {
	sc, cc := tcpPair(t)
	c := fanConn(t, sc, 0)
	c.follower = "v1"
	data, ask := []byte("data: x\n\n"), []byte("event: ask\ndata: {\"position\":1}\n\n")
	j := job(0, data)
	j.want, j.ask = 1, ask
	var w fanWriter
	w.init(j)
	if !w.send(c) || c.pos != 1 || c.told != 1 || c.asked != 1 {
		t.Fatalf("send() = false or left pos %d told %d asked %d, want true, 1 1 1", c.pos, c.told, c.asked)
	}
	j2 := job(1, []byte("data: y\n\n"))
	j2.want, j2.ask = j.want, j.ask
	w.init(j2)
	if !w.send(c) || c.pos != 2 || c.asked != 1 {
		t.Fatalf("second send() = false or left pos %d asked %d, want true, 2 1", c.pos, c.asked)
	}
	sc.Close()
	want := chunk(append(append([]byte(nil), data...), ask...))
	want = append(want, chunk(j2.seg.data)...)
	if b, err := io.ReadAll(cc); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("client read %q, %v; want %q", b, err, want)
	}
}
