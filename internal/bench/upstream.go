package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// upstreamConnsPath answers the number of connections the upstream has
// accepted, so the gate benchmark can tell how its clients reuse them.
const upstreamConnsPath = "/_bench/conns"

// ServeUpstream runs the trivial upstream that `tegata-bench gate` measures
// the gate against and proxies to: every request is answered 200 with a
// two-byte body, except upstreamConnsPath. It logs its URL in the line the
// benchmarks wait for and serves until ctx ends.
func ServeUpstream(ctx context.Context, addr string, logTo io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var conns atomic.Int64
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			if r.URL.Path == upstreamConnsPath {
				_, _ = io.WriteString(w, strconv.FormatInt(conns.Load(), 10))
				return
			}
			_, _ = io.WriteString(w, "ok")
		})}
	slog.New(slog.NewTextHandler(logTo, nil)).Info("bench upstream listening", "url", "http://"+ln.Addr().String())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
