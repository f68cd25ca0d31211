package bench_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The floor under a feed node's cost per verifier: what one small write
// to a loopback TCP socket, and one small read from it, cost the process
// that makes it, with the other end in another process (as a node and its
// verifiers are). A revocation costs a node at least one write per
// stream, a confirmation one report line read per stream; these say how
// much of the node's CPU per verifier no change to the node can remove
// while each verifier has a TCP stream of its own.
//
//	go test -run '^$' -bench Loopback -benchtime 20000x ./internal/bench
//
// Each benchmark reports cpu-µs/op: the CPU time (user and system, every
// thread) its process spent per write or read, read from getrusage, so
// that the wait between rounds does not count. Writes and reads go in
// rounds, one message per connection in each, with a pause between rounds
// in which the reader drains every connection and goes back to waiting:
// the pattern of a revocation written to every stream, in which every
// write finds its reader asleep. With one connection the pattern is that
// of a single follower.

func BenchmarkLoopbackWrite(b *testing.B) {
	for _, conns := range []int{1, 1000} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			cs := loopbackConns(b, "sink", conns, 0)
			msg := make([]byte, loopbackMsg)
			msg[len(msg)-1] = '\n'
			b.Run("net.Conn", func(b *testing.B) {
				loopbackRounds(b, conns, func(i int) error {
					_, err := cs[i].Write(msg)
					return err
				})
			})
			raws := make([]syscall.RawConn, conns)
			for i, c := range cs {
				raws[i], _ = c.(*net.TCPConn).SyscallConn()
			}
			b.Run("write(2)", func(b *testing.B) {
				loopbackRounds(b, conns, func(i int) error {
					var werr error
					err := raws[i].Write(func(fd uintptr) bool {
						_, werr = syscall.Write(int(fd), msg)
						return werr != syscall.EAGAIN
					})
					if err != nil {
						return err
					}
					return werr
				})
			})
		})
	}
}

// loopbackRounds times b.N calls of write over conns connections, in
// rounds of one call per connection.
func loopbackRounds(b *testing.B, conns int, write func(i int) error) {
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%conns == 0 {
			pauseUncounted(b, &cpu0, loopbackPause(conns))
		}
		if err := write(i % conns); err != nil {
			b.Fatalf("write: %v", err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
}

// pauseUncounted sleeps between rounds; the CPU the sleep itself takes
// (a timer, a futex wait) is left out of the count.
func pauseUncounted(b *testing.B, cpu0 *time.Duration, d time.Duration) {
	before := processCPU(b)
	time.Sleep(d)
	*cpu0 += processCPU(b) - before
}

func BenchmarkLoopbackRead(b *testing.B) {
	for _, conns := range []int{1, 1000} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			rounds := (b.N + conns - 1) / conns
			cs := loopbackConns(b, "source", conns, rounds)
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			cpu0 := processCPU(b)
			b.ResetTimer()
			for _, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// As a node reads report lines and a follower its
					// stream: a buffered reader per connection, a line at
					// a time.
					br := bufio.NewReaderSize(c, 4096)
					for range rounds {
						if _, err := br.ReadSlice('\n'); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatalf("read: %v", err)
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(rounds*conns)/1e3, "cpu-µs/op")
		})
	}
}

// BenchmarkLoopbackReadQueued is the read(2) system call alone: the peer
// has written every message before the first read, so no read waits and
// nothing is woken; it is the part of a read no scheduling can remove.
func BenchmarkLoopbackReadQueued(b *testing.B) {
	const conns = 1000
	rounds := (b.N + conns - 1) / conns
	cs := loopbackConns(b, "queued", conns, rounds)
	raws := make([]syscall.RawConn, conns)
	for i, c := range cs {
		raws[i], _ = c.(*net.TCPConn).SyscallConn()
	}
	buf := make([]byte, loopbackMsg)
	cpu0 := processCPU(b)
	b.ResetTimer()
	for r := range rounds {
		for i, raw := range raws {
			var n int
			var rerr error
			err := raw.Read(func(fd uintptr) bool {
				n, rerr = syscall.Read(int(fd), buf)
				return rerr != syscall.EAGAIN
			})
			if err == nil {
				err = rerr
			}
			if err != nil || n != loopbackMsg {
				b.Fatalf("round %d, connection %d: read %d bytes, %v; want %d", r, i, n, err, loopbackMsg)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(rounds*conns)/1e3, "cpu-µs/op")
}

// loopbackConns starts the test binary as the peer in mode and returns
// the conns connections it opened to this process.
func loopbackConns(b *testing.B, mode string, conns, rounds int) []net.Conn {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	self, err := os.Executable()
	if err != nil {
		b.Fatalf("os.Executable: %v", err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %d", loopbackPeerEnv, mode, ln.Addr(), conns, rounds))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatalf("the peer's output: %v", err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the peer: %v", err)
	}
	cs := make([]net.Conn, conns)
	for i := range cs {
		if cs[i], err = ln.Accept(); err != nil {
			b.Fatalf("accept: %v", err)
		}
	}
	if mode == "queued" {
		// The peer says when it has written everything.
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			b.Fatalf("the peer did not write its messages: %v", err)
		}
	}
	b.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cs
}

// processCPU is the CPU time this process has spent, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
