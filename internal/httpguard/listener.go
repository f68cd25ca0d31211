package httpguard

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
)

// Listener wraps ln so that at most perAddr connections from one client
// address (see AddrKey) are open at once; a connection over the cap is
// closed as soon as it is accepted, before anything is read from it.
// Addresses in exempt (proxies that carry many clients' requests) have no
// cap. perAddr <= 0 returns ln unchanged.
func Listener(ln net.Listener, perAddr int, exempt []netip.Prefix, log *slog.Logger) net.Listener {
	if perAddr <= 0 {
		return ln
	}
	if log == nil {
		log = slog.Default()
	}
	return &listener{Listener: ln, perAddr: perAddr, exempt: exempt, log: log, open: map[string]int{}}
}

type listener struct {
	net.Listener
	perAddr int
	exempt  []netip.Prefix
	log     *slog.Logger

	mu   sync.Mutex
	open map[string]int
}

// Accept returns the next connection within the caps.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, ok := l.take(c.RemoteAddr())
		if ok {
			return &conn{Conn: c, release: func() { l.release(key) }}, nil
		}
		l.log.Debug("connection refused: too many from this address", "remote", c.RemoteAddr().String(), "max", l.perAddr)
		_ = c.Close()
	}
}

// take counts a new connection from addr; it reports false when addr is at
// its cap. An exempt address counts under the empty key, which has no cap.
func (l *listener) take(addr net.Addr) (string, bool) {
	key := ""
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil && !inPrefixes(ap.Addr().Unmap(), l.exempt) {
		key = AddrKey(ap.Addr().String())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if key != "" && l.open[key] >= l.perAddr {
		return "", false
	}
	l.open[key]++
	return key, true
}

func (l *listener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// conn releases its place once, however often it is closed.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

// NetConn returns the connection accepted: writing to it, or setting its
// deadlines, is the same as through c (a feed stream that took its
// connection over writes it with writev, which c would hide); only Close
// goes through c.
func (c *conn) NetConn() net.Conn { return c.Conn }

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	a = a.Unmap() // an IPv4 peer of a dual-stack listener is in IPv4 prefixes
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
