package feed

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"
)

// A stream over plain HTTP/1.1 takes its connection over from net/http
// once its request is checked and its headers are decided, and writes the
// chunked encoding itself: each flush is one writev of the chunk's size
// line, the bytes written since (the hub's shared, pre-encoded events
// referenced, not copied) and its CRLF. net/http would copy every event
// into the response's buffer, frame it in its chunk writer and copy it
// again into the connection's buffer. As net/http does, a goroutine reads
// the connection to see the client go (rawStream.watch): it is parked
// until then, so it costs no CPU per event, and the stream ends as soon
// as its client closes or resets its end, whatever the stream is waiting
// for. One that stopped reading is ended by the write deadline.
//
// HTTP/2, TLS, HTTP/1.0 and any writer that cannot be hijacked keep
// net/http's path.

// rawStream is a stream's connection after the take-over.
type rawStream struct {
	// nc is the connection as the server accepted it, closed at the
	// stream's end (a listener's wrapper may count it, see
	// httpguard.Listener); wc is the connection under any wrappers
	// that offer it (netConn), written, read and given deadlines:
	// a wrapper hides the *net.TCPConn's writev and its descriptor.
	nc, wc net.Conn
	// sc is wc's descriptor, which the hub's fan-out writes to without
	// waiting (fanout.go); nil if it offers none.
	sc syscall.RawConn
	// head is the answer's status line and headers, written in front of
	// the first chunk; nil once written.
	head []byte
	// parts are the bytes written since the last flush: each either a
	// shared slice, which no one modifies, or a span of own, a copy of
	// bytes the stream will reuse before the flush.
	parts []part
	own   []byte
	size  int
	// pending is the rest of a chunk the fan-out began to write and the
	// socket did not take at once, written first at the next flush.
	pending [][]byte
	// vec is the flush's scratch; sizeLine the chunk's size line.
	vec      net.Buffers
	sizeLine []byte
	// left is set once the client closed or reset its end (watch);
	// broken once the stream panicked (Hub.recoverStream).
	left, broken atomic.Bool
}

type part struct {
	shared   []byte
	from, to int // in own, when shared is nil
}

var crlf = []byte("\r\n")

// lastChunk ends a chunked body.
var lastChunk = []byte("0\r\n\r\n")

// takeOver hijacks the stream's connection when it is plain HTTP/1.1 and
// the writer allows it, and reports whether it did. The hub then counts
// the stream until it ends (see Hub.Run).
func (h *Hub) takeOver(c *conn, w http.ResponseWriter, rc *http.ResponseController, r *http.Request) bool {
	if r.TLS != nil || !r.ProtoAtLeast(1, 1) || r.ProtoAtLeast(2, 0) {
		return false
	}
	// Counted under the read lock while the hub runs: stop takes the lock
	// before Run waits, so no stream is counted once Run waits.
	h.mu.RLock()
	stopped := h.stopped
	if !stopped {
		h.takenOver.Add(1)
	}
	h.mu.RUnlock()
	if stopped {
		return false
	}
	nc, _, err := rc.Hijack()
	if err != nil {
		h.takenOver.Done()
		return false
	}
	s := &rawStream{nc: nc, wc: netConn(nc), head: responseHead(w.Header(), time.Now())}
	c.out = s
	if s.sc = directConn(s.wc); s.sc != nil {
		c.fan, c.wake = s, make(chan struct{}, 1)
	}
	return true
}

// watch reads the connection until a read fails, which is when the
// client closed or reset its end or the stream closed the connection, and
// then calls done. A follower sends nothing after its request; whatever a
// client sends anyway is read and dropped, into a buffer kept small for
// that reason: it lives as long as the stream. The read deadline net/http
// may have left from reading the request is cleared first: a stream has
// none.
func (s *rawStream) watch(done func()) {
	_ = s.wc.SetReadDeadline(time.Time{})
	b := make([]byte, 16)
	for {
		if _, err := s.wc.Read(b); err != nil {
			s.left.Store(true)
			done()
			return
		}
	}
}

// netConn returns the connection under nc's wrappers, as far as they
// offer it with a NetConn method (as httpguard's does): the one to write
// to. A TLS connection is never unwrapped (the stream takes none over;
// this is a second guard).
func netConn(nc net.Conn) net.Conn {
	for {
		if _, ok := nc.(*tls.Conn); ok {
			return nc
		}
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nc
		}
		nc = u.NetConn()
	}
}

// responseHead encodes a 200 answer with hdr for a chunked body on a
// connection closed at its end (nobody gives it back to net/http).
func responseHead(hdr http.Header, now time.Time) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	if hdr.Get("Date") == "" {
		b.WriteString("Date: " + now.UTC().Format(http.TimeFormat) + "\r\n")
	}
	_ = hdr.Write(&b) // a bytes.Buffer takes every write
	b.WriteString("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
	return b.Bytes()
}

func (s *rawStream) setWriteDeadline(t time.Time) { _ = s.wc.SetWriteDeadline(t) }

// write adds b, which the caller may modify once write returns.
func (s *rawStream) write(b []byte) error {
	from := len(s.own)
	s.own = append(s.own, b...)
	if n := len(s.parts); n > 0 && s.parts[n-1].shared == nil && s.parts[n-1].to == from {
		s.parts[n-1].to = len(s.own)
	} else {
		s.parts = append(s.parts, part{from: from, to: len(s.own)})
	}
	s.size += len(b)
	return nil
}

// writeShared adds b, which nobody modifies.
func (s *rawStream) writeShared(b []byte) error {
	s.parts = append(s.parts, part{shared: b})
	s.size += len(b)
	return nil
}

// flush writes what was added since the last flush as one chunk, behind
// the answer's head if that has not gone yet. A chunk is never empty: an
// empty one ends the body.
func (s *rawStream) flush() error {
	if s.idle() {
		return nil
	}
	s.vec = s.vec[:0]
	if s.head != nil {
		s.vec = append(s.vec, s.head)
	}
	s.vec = append(s.vec, s.pending...)
	if s.size > 0 {
		s.sizeLine = appendChunkSize(s.sizeLine[:0], s.size)
		s.vec = append(s.vec, s.sizeLine)
		for _, p := range s.parts {
			if p.shared == nil {
				p.shared = s.own[p.from:p.to]
			}
			s.vec = append(s.vec, p.shared)
		}
		s.vec = append(s.vec, crlf)
	}
	all := s.vec
	_, err := s.vec.WriteTo(s.wc)
	// Keep no shared bytes alive until the next flush (a segment may be
	// megabytes), nor a burst's worth of own buffer.
	clear(all)
	s.vec = all[:0]
	clear(s.parts)
	s.parts, s.size, s.head, s.pending = s.parts[:0], 0, nil, nil
	if cap(s.own) > 4<<10 {
		s.own = nil
	}
	s.own = s.own[:0]
	return err
}

// idle reports whether nothing waits to be written: the fan-out may write
// a chunk of its own.
func (s *rawStream) idle() bool { return s.head == nil && s.size == 0 && len(s.pending) == 0 }

// keepRest keeps what of bufs is left after n bytes were written, for the
// next flush, and reports whether anything was. The rest of the buffer
// the write stopped in is copied (a fan-out worker's size line is its
// own); those after it (the hub's shared bytes, the CRLF) are kept as
// they are: nobody modifies them.
func (s *rawStream) keepRest(bufs [][]byte, n int) bool {
	for i, b := range bufs {
		if n < len(b) {
			s.pending = append(s.pending, append([]byte(nil), b[n:]...))
			s.pending = append(s.pending, bufs[i+1:]...)
			return true
		}
		n -= len(b)
	}
	return false
}

// end writes the body's last chunk, behind anything not flushed yet, and
// closes the connection: the client reads a complete answer. broken says
// a write failed already or the client went away, and only closes it.
func (s *rawStream) end(broken bool) {
	if !broken && s.flush() == nil {
		_, _ = s.wc.Write(lastChunk)
	}
	_ = s.nc.Close()
}
