// Package testproc helps tests that run tegata's binaries as processes.
// Safe for concurrent use.
package testproc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Freeze stops p with SIGSTOP and returns once the kernel reports it
// stopped. Signal returns as soon as the signal is queued: a process that
// runs on for a moment could still apply what the test means it to miss
// (on a loaded machine it did). Where /proc is missing it returns after
// the signal.
func Freeze(p *os.Process) error {
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		state, err := state(p.Pid)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil
		case err != nil:
			return err
		case state == 'T' || state == 't':
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("process %d not stopped 10s after SIGSTOP (state %c)", p.Pid, state)
		}
		time.Sleep(time.Millisecond) // polling the kernel's view; nothing to wait on
	}
}

// state is the one-letter state in /proc/PID/stat: "pid (comm) S ...";
// comm may hold spaces and parentheses, so the state follows the last ')'.
func state(pid int) (byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, b)
	}
	return b[i+2], nil
}
