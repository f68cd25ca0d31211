package testproc

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowPort is the first port FreeAddr hands out.
const lowPort = 10000

var ports struct {
	sync.Mutex
	next int // ports handed out so far
}

// FreeAddr returns a loopback address nothing listens on, for a process
// that a test starts (or restarts) there later. The port lies below the
// kernel's ephemeral range, which listeners on port 0 and outgoing
// connections draw from, so none of them takes it meanwhile: tests that
// use FreeAddr may run in parallel with each other and with tests that
// listen on port 0. A process hands out ports in turn from a place of its
// own in that range (picked by its id, so that test binaries running at
// once start apart), each checked free when handed out.
func FreeAddr() (string, error) {
	high, err := ephemeralStart()
	if err != nil {
		return "", err
	}
	span := high - lowPort
	if span < 1000 {
		return "", fmt.Errorf("testproc: the ephemeral port range starts at %d, leaving too few ports above %d", high, lowPort)
	}
	start := os.Getpid() * 61 % span
	ports.Lock()
	defer ports.Unlock()
	for range span {
		port := lowPort + (start+ports.next)%span
		ports.next++
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken by another program
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			return "", err
		}
		return addr, nil
	}
	return "", fmt.Errorf("testproc: no free port in %d-%d", lowPort, high-1)
}

// ephemeralStart returns the first port of the kernel's ephemeral range
// (Linux's default where /proc does not say).
func ephemeralStart() (int, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if os.IsNotExist(err) {
		return 32768, nil
	}
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0, fmt.Errorf("testproc: ip_local_port_range %q: want two ports", b)
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0, fmt.Errorf("testproc: ip_local_port_range %q: %w", b, err)
	}
	return n, nil
}
