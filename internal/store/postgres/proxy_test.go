package postgres

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// blockProxy is a TCP proxy to Postgres whose connections a test can cut
// and whose new connections it can refuse for a while: a listener behind
// it is then really not listening, for as long as the test says.
type blockProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	conns   []net.Conn
	blocked bool
}

// newBlockProxy starts a proxy to the server dsn names and returns it with
// dsn changed to reach the server through it.
func newBlockProxy(t *testing.T, dsn string) (*blockProxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		t.Skipf("the test database's DSN is not a postgres:// URL with a host (%v): cannot put a proxy in front of it", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blockProxy{ln: ln, target: u.Host}
	t.Cleanup(func() { _ = ln.Close(); p.block() })
	go p.serve()
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *blockProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		blocked := p.blocked
		p.mu.Unlock()
		if blocked {
			_ = in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
		go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
	}
}

// block closes every connection through the proxy and refuses new ones
// until unblock.
func (p *blockProxy) block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *blockProxy) unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
}
