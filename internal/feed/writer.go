package feed

import (
	"net/http"
	"time"
)

// streamWriter carries a stream's bytes to its client: through net/http
// (httpWriter), or on the connection the stream took over from it
// (rawStream, see takeover.go). Bytes added go to the client at the next
// flush at the latest.
type streamWriter interface {
	// setWriteDeadline bounds the writes from here on: one blocked past
	// it fails. A deadline that cannot be set shows as the next write's
	// error, or not at all where the writer has none (net/http's
	// ErrNotSupported): that writer loses only the stall protection.
	setWriteDeadline(t time.Time)
	// write adds b, which the caller may reuse once write returns.
	write(b []byte) error
	// writeShared adds b, one of the hub's encoded frames, which nobody
	// modifies.
	writeShared(b []byte) error
	flush() error
}

// httpWriter writes a stream through net/http's response.
type httpWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (hw httpWriter) setWriteDeadline(t time.Time) { _ = hw.rc.SetWriteDeadline(t) }

func (hw httpWriter) write(b []byte) error {
	_, err := hw.w.Write(b)
	return err
}

// writeShared copies b into the response's buffer, as any write.
func (hw httpWriter) writeShared(b []byte) error { return hw.write(b) }

func (hw httpWriter) flush() error { return hw.rc.Flush() }
