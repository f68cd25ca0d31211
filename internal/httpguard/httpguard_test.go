package httpguard

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestAddrKeyIPv6Slash64: a host is commonly handed a whole IPv6 /64, so
// per-address limits count the /64, not the address.
func TestAddrKeyIPv6Slash64(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"203.0.113.9", "203.0.113.9"},
		{"::ffff:203.0.113.9", "203.0.113.9"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		if got := AddrKey(tt.addr); got != tt.want {
			t.Errorf("AddrKey(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// slowClient opens a connection to addr and sends a request head that
// announces a body of n bytes, then sends nothing more. It returns the
// connection; reading from it returns once the server closes it.
func slowClient(t *testing.T, addr, method, path string, n int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", method, path, n)
	return c
}

// closedWithin reports whether the server closed c within d (reading
// whatever answer it sent first).
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return err == nil // EOF: closed by the server; a timeout is an error
}

func TestBodyDeadline(t *testing.T) {
	const d = 100 * time.Millisecond
	long := make(chan struct{})
	t.Cleanup(func() { close(long) })
	var canceled atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/ignores-body", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	mux.HandleFunc("/reads-body", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// Work after the body: the deadline must not cancel it.
		select {
		case <-time.After(3 * d):
		case <-r.Context().Done():
			canceled.Store(true)
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-long:
		case <-r.Context().Done():
			canceled.Store(true)
		}
	})
	mux.HandleFunc("/relaxed", func(w http.ResponseWriter, r *http.Request) {
		Relax(r, 5*d)
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})
	srv := httptest.NewServer(BodyDeadline(mux, d))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	for _, path := range []string{"/ignores-body", "/reads-body", "/missing"} {
		c := slowClient(t, addr, "POST", path, 1000)
		if !closedWithin(c, 20*d) {
			t.Errorf("POST %s with a stalled body: connection still open after %s, want it closed after %s", path, 20*d, d)
		}
	}

	// A body sent in full: the deadline is lifted, the handler's work after
	// it is not cut.
	resp, err := http.Post(srv.URL+"/reads-body", "application/json", strings.NewReader("{}"))
	if err != nil || resp.StatusCode != http.StatusOK || canceled.Load() {
		t.Errorf("POST /reads-body taking 3x the deadline after its body = %v, %v, canceled %v; want 200", resp, err, canceled.Load())
	}
	if resp != nil {
		resp.Body.Close()
	}

	// No body: no deadline, however long the answer.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	if closedWithin(c, 5*d) || canceled.Load() {
		t.Errorf("GET /stream: closed or canceled within %s, want it open (no body, no deadline)", 5*d)
	}

	// Relaxed: a body that keeps moving may take longer than the deadline.
	pr, pw := io.Pipe()
	go func() {
		// The client's pace is what is tested, not a wait: a byte every
		// half deadline, 6x the deadline in all.
		pace := time.NewTicker(d / 2)
		defer pace.Stop()
		for range 12 {
			<-pace.C
			_, _ = pw.Write([]byte("x"))
		}
		pw.Close()
	}()
	resp, err = http.Post(srv.URL+"/relaxed", "application/octet-stream", pr)
	if err != nil {
		t.Fatalf("POST /relaxed = %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "12 <nil>" {
		t.Errorf("POST /relaxed, 12 bytes over 6x the deadline = %q, want all 12 read", b)
	}
}

func TestListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	capped := Listener(ln, 2, nil, nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go srv.Serve(capped)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		held = append(held, c)
	}
	// The server holds both (it waits for a request head); a third is
	// closed at once. Dial succeeds (the kernel accepts), the read ends.
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if !closedWithin(third, 5*time.Second) {
		t.Fatal("third connection from one address: still open, want it closed")
	}
	held[0].Close()
	// The place frees once the server has seen the close.
	testtime.Eventually(t, 5*time.Second, "a closed connection to free its place", func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	if exempt := Listener(ln, 1, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil).(*listener); func() bool {
		_, ok1 := exempt.take(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
		_, ok2 := exempt.take(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2})
		return !ok1 || !ok2
	}() {
		t.Error("an exempt address was capped")
	}
}
