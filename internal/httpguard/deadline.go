package httpguard

import (
	"io"
	"net/http"
	"time"
)

// BodyTimeout bounds how long the body of a request may take to arrive at
// a tegata server (the authority's API, tegata gate): a client trickling a
// body loses the connection then. The gate relaxes it for a request it has
// verified (ForwardBodyIdle).
const BodyTimeout = 10 * time.Second

// ForwardBodyIdle is how long the body of a verified request that tegata
// gate forwards to its upstream may stall between two reads (the default of
// nginx's client_body_timeout), however long the whole body takes.
const ForwardBodyIdle = time.Minute

// BodyDeadline wraps h so that the body of every request that has one must
// arrive within d of the request's start: the connection's read deadline
// is set when the request begins and cleared once the body has been read
// to its end. A handler that never reads the body (a refused request,
// /healthz) leaves the deadline in place, so the server's draining of the
// body before it reuses the connection is bounded too, and the connection
// is closed at the deadline. Requests without a body (GET, the feed stream)
// are left alone: nothing needs reading, and a deadline would end a long
// answer (the server cancels a request whose connection read times out).
func BodyDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &body{ReadCloser: r.Body, rc: rc}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// Relax replaces the deadline on r's body by an idle one: each read of the
// body must make progress within idle, however long the whole body takes.
// The gate calls it once a request is authenticated, so that an upload of
// any size can stream to the upstream while a client that stops sending
// still loses the connection. It does nothing unless BodyDeadline wrapped
// the request.
func Relax(r *http.Request, idle time.Duration) {
	if b, ok := r.Body.(*body); ok {
		b.idle = idle
	}
}

// body clears the read deadline at the end of the body.
type body struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	done bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.idle > 0 && !b.done {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
