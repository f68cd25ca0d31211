package bench

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write(append(sc.Bytes(), '\n')); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line and waits up to wait for its echo.
func roundTrip(c net.Conn, r *bufio.Reader, wait time.Duration) bool {
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	line, err := r.ReadString('\n')
	return err == nil && line == "ping\n"
}

func TestLink(t *testing.T) {
	l, err := newLink(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	c, err := net.Dial("tcp", l.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if !roundTrip(c, r, 10*time.Second) {
		t.Fatal("no echo through a healthy link")
	}
	for _, dir := range []int{up, down} {
		l.apply("t", linkMode{stalled: [2]bool{dir == up, dir == down}})
		if !l.isolated() {
			t.Errorf("isolated() = false with direction %d stalled", dir)
		}
		// The failure direction: a stalled link must hold the echo back.
		if roundTrip(c, r, 200*time.Millisecond) {
			t.Fatalf("echo passed with direction %d stalled", dir)
		}
		l.clear("t")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
			t.Fatalf("held echo after healing direction %d = %q, %v", dir, line, err)
		}
	}
	l.apply("d", linkMode{delay: time.Millisecond})
	if !roundTrip(c, r, 10*time.Second) {
		t.Fatal("no echo through a delaying link")
	}
	l.clear("d")
	l.cut()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("connection still open after cut")
	}
	l.apply("t", linkMode{refuse: true})
	c2, err := net.Dial("tcp", l.addr())
	if err == nil {
		r2 := bufio.NewReader(c2)
		if roundTrip(c2, r2, 10*time.Second) {
			t.Fatal("echo through a link refusing connections")
		}
		c2.Close()
	}
	l.clear("t")
	c3, err := net.Dial("tcp", l.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if !roundTrip(c3, bufio.NewReader(c3), 10*time.Second) {
		t.Fatal("no echo after healing")
	}
}

// Faults overlap: ending one leaves the others' modes in place.
func TestLinkOverlappingFaults(t *testing.T) {
	l, err := newLink(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	l.apply("a", linkMode{stalled: [2]bool{true, false}})
	l.apply("b", linkMode{stalled: [2]bool{false, true}})
	l.clear("a")
	if !l.isolated() {
		t.Error("isolated() = false after one of two stalls ended")
	}
	l.clear("b")
	if l.isolated() {
		t.Error("isolated() = true after both stalls ended")
	}
}
