package bench

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// link is a TCP proxy the chaos harness puts between one client (a
// verifier, a gate, a node's Postgres pool) and one server, and controls:
// it can delay what passes, stall one direction (bytes wait, connections
// stay open), refuse new connections, and cut the open ones.
type link struct {
	ln net.Listener

	mu      sync.Mutex
	target  string
	conns   map[*linkConn]struct{}
	modes   map[string]linkMode // by the fault that set it: faults overlap
	eff     linkMode            // the union of modes
	changed chan struct{}       // closed and replaced on every change of mode
	closed  bool
}

// linkMode is what one fault does to a link.
type linkMode struct {
	delay   time.Duration
	stalled [2]bool // by direction: up (client → server), down
	refuse  bool    // new connections are closed at once
}

// isolating reports whether nothing can make a round trip through the
// link in this mode (the open connections were cut when refuse was set).
func (m linkMode) isolating() bool { return m.refuse || m.stalled[up] || m.stalled[down] }

// Directions of a link.
const (
	up   = 0
	down = 1
)

type linkConn struct{ client, server net.Conn }

// newLink listens on a kernel-chosen loopback port and forwards to target.
func newLink(target string) (*link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &link{ln: ln, target: target, conns: map[*linkConn]struct{}{}, modes: map[string]linkMode{}, changed: make(chan struct{})}
	go l.accept()
	return l, nil
}

// addr is where clients connect.
func (l *link) addr() string { return l.ln.Addr().String() }

func (l *link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.serve(c)
	}
}

func (l *link) serve(client net.Conn) {
	l.mu.Lock()
	refuse, target := l.eff.refuse || l.closed, l.target
	l.mu.Unlock()
	if refuse {
		client.Close()
		return
	}
	server, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	lc := &linkConn{client: client, server: server}
	l.mu.Lock()
	if l.eff.refuse || l.closed {
		l.mu.Unlock()
		lc.close()
		return
	}
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	done := make(chan bool, 2)
	go func() { done <- l.pump(server, client, up) }()
	go func() { done <- l.pump(client, server, down) }()
	// A clean end of one direction (EOF, passed on as a half close) lets
	// the other finish; anything else ends both.
	if clean := <-done; !clean {
		lc.close()
	}
	<-done
	lc.close()
	l.mu.Lock()
	delete(l.conns, lc)
	l.mu.Unlock()
}

func (lc *linkConn) close() {
	lc.client.Close()
	lc.server.Close()
}

// pump copies src to dst, holding bytes while the direction is stalled
// and for the delay. It reports whether src ended cleanly (EOF), which it
// passes on to dst as a half close.
func (l *link) pump(dst, src net.Conn, dir int) bool {
	buf := make([]byte, 8<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !l.hold(dir) {
				return false
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return false
			}
		}
		if errors.Is(err, io.EOF) {
			if tc, ok := dst.(*net.TCPConn); ok && tc.CloseWrite() == nil {
				return true
			}
			return false
		}
		if err != nil {
			return false
		}
	}
}

// hold waits while dir is stalled, then for the delay; false once the link
// is closed.
func (l *link) hold(dir int) bool {
	for {
		l.mu.Lock()
		stalled, delay, ch, closed := l.eff.stalled[dir], l.eff.delay, l.changed, l.closed
		l.mu.Unlock()
		if closed {
			return false
		}
		if !stalled {
			if delay > 0 {
				time.Sleep(delay)
			}
			return true
		}
		<-ch
	}
}

// set changes the link under its lock and wakes held pumps.
func (l *link) set(f func()) {
	l.mu.Lock()
	f()
	var eff linkMode
	for _, m := range l.modes {
		eff.delay = max(eff.delay, m.delay)
		eff.stalled[up] = eff.stalled[up] || m.stalled[up]
		eff.stalled[down] = eff.stalled[down] || m.stalled[down]
		eff.refuse = eff.refuse || m.refuse
	}
	l.eff = eff
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// apply sets the mode of fault id; a refusing mode also cuts the open
// connections.
func (l *link) apply(id string, m linkMode) {
	l.set(func() { l.modes[id] = m })
	if m.refuse {
		l.cut()
	}
}

// clear ends fault id's mode.
func (l *link) clear(id string)         { l.set(func() { delete(l.modes, id) }) }
func (l *link) setTarget(target string) { l.set(func() { l.target = target }) }

// isolated reports whether the link lets no round trip through now.
func (l *link) isolated() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.eff.isolating()
}

// cut closes every open connection (new ones pass, unless refused).
func (l *link) cut() {
	l.mu.Lock()
	conns := make([]*linkConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// close stops the link for good.
func (l *link) close() {
	l.set(func() { l.closed = true })
	l.ln.Close()
	l.cut()
}
