package bench_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// loopbackPeerEnv makes the test binary the other end of a loopback
// benchmark: "sink ADDR CONNS" reads everything it gets, "source ADDR
// CONNS ROUNDS" writes a message to each connection per round, pausing
// between rounds, and "queued ADDR CONNS ROUNDS" writes every round at
// once, then says so on its standard output.
const loopbackPeerEnv = "TEGATA_BENCH_LOOPBACK_PEER"

// loopbackMsg is the size of one write: about a single revocation's event
// on the stream (its id, event and data lines), and four times a report
// line.
const loopbackMsg = 100

// loopbackPause is the pause between two rounds of conns messages: long
// enough for the other end to drain a round and wait again.
func loopbackPause(conns int) time.Duration {
	return max(100*time.Microsecond, time.Duration(conns)*2*time.Microsecond)
}

// loopbackPeer runs the other end of a loopback benchmark (see
// loopbackPeerEnv) until this process is killed or its connections end.
func loopbackPeer(spec string) {
	var mode, addr string
	var conns, rounds int
	if _, err := fmt.Sscan(spec, &mode, &addr, &conns, &rounds); err != nil {
		fmt.Fprintln(os.Stderr, "loopback peer:", err)
		os.Exit(2)
	}
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loopback peer:", err)
			os.Exit(2)
		}
		cs[i] = c
	}
	if mode == "sink" {
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
		wg.Wait()
		return
	}
	msg := []byte(fmt.Sprintf("%0*d\n", loopbackMsg-1, 0))
	for r := range rounds {
		if r > 0 && mode == "source" {
			time.Sleep(loopbackPause(conns))
		}
		for _, c := range cs {
			if _, err := c.Write(msg); err != nil {
				return
			}
		}
	}
	if mode == "queued" {
		fmt.Println("written")
	}
	// Wait for the benchmark to close the connections.
	_, _ = cs[0].Read(make([]byte, 1))
}
