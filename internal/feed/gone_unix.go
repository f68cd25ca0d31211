//go:build unix

package feed

import "syscall"

// gone reports whether the client closed its end of the connection: a
// read that would not block finds the end of the stream, or a reset. It
// reads nothing (a peek), and costs one system call.
func (s *rawStream) gone() bool {
	sc, ok := s.wc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		// The descriptor does not block: nothing to read is EAGAIN.
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		gone = err == nil && n == 0 || err == syscall.ECONNRESET
		return true // one attempt, never wait for readability
	})
	return gone
}
