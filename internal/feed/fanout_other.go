//go:build !linux

package feed

import (
	"errors"
	"net"
	"syscall"
)

// directConn: the fan-out writes to connections only on Linux; elsewhere
// every stream's goroutine writes its own.
func directConn(net.Conn) syscall.RawConn { return nil }

type nowWriter struct{}

func (*nowWriter) write(syscall.RawConn, [][]byte) (int, error) {
	return 0, errors.New("feed: no direct writes on this system")
}
