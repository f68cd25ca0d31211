package feed

import (
	"net"
	"syscall"
	"unsafe"
)

// directConn returns the connection's file descriptor access for the
// fan-out's non-blocking writes, nil if it offers none.
func directConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// nowWriter writes to a connection without waiting: its descriptor is
// non-blocking (as Go keeps every network connection's), and the writev
// is tried once.
type nowWriter struct {
	iov []syscall.Iovec
	n   int
	err error
	fn  func(fd uintptr) bool
}

// write writes what of bufs the socket takes at once, and returns how
// much that was.
func (w *nowWriter) write(rc syscall.RawConn, bufs [][]byte) (int, error) {
	if w.fn == nil {
		w.fn = w.writev
	}
	w.iov = w.iov[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			v := syscall.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			w.iov = append(w.iov, v)
		}
	}
	w.n, w.err = 0, nil
	err := rc.Write(w.fn)
	clear(w.iov) // keep no segment alive
	if err != nil {
		return w.n, err
	}
	return w.n, w.err
}

// writev is called with the connection's write lock held; returning true
// says not to wait for the socket to take more.
func (w *nowWriter) writev(fd uintptr) bool {
	for {
		n, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(len(w.iov)))
		switch e {
		case 0:
			w.n = int(n)
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
		default:
			w.err = e
		}
		return true
	}
}
