package testproc

import (
	"net"
	"os"
	"strconv"
	"testing"
)

// TestFreeAddr: the addresses are loopback, distinct, below the ephemeral
// range and free to listen on; a port taken by another program is skipped.
func TestFreeAddr(t *testing.T) {
	high, err := ephemeralStart()
	if err != nil {
		t.Fatal(err)
	}
	// Another program listens on the port FreeAddr would hand out next.
	span := high - lowPort
	ports.Lock()
	next := lowPort + (os.Getpid()*61%span+ports.next)%span
	ports.Unlock()
	taken, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(next)))
	if err != nil {
		t.Skipf("port %d is in use already: %v", next, err)
	}
	defer taken.Close()
	seen := map[string]bool{taken.Addr().String(): true}
	for range 20 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatalf("FreeAddr() = %v", err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("FreeAddr() = %q: %v", addr, err)
		}
		if p, _ := strconv.Atoi(port); host != "127.0.0.1" || p < lowPort || p >= high {
			t.Errorf("FreeAddr() = %q, want 127.0.0.1 and a port in %d-%d", addr, lowPort, high-1)
		}
		if seen[addr] {
			t.Errorf("FreeAddr() = %q twice (or a port in use)", addr)
		}
		seen[addr] = true
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listening on FreeAddr() = %q: %v", addr, err)
		}
		// Held, so that a later FreeAddr must skip it if it came round.
		defer ln.Close()
	}
}
