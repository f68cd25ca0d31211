package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// metricsListener serves /metrics (and /healthz) on an address of its own
// (tegata serve --metrics-addr), so that the public listener, which a load
// balancer exposes, need not answer scrapes.
type metricsListener struct {
	srv *http.Server
	ln  net.Listener
	url string
}

// listenMetrics listens on addr; empty addr: nil, metrics stay on the API
// listener. With pprof it also serves Go's profiles under /debug/pprof/.
func listenMetrics(addr string, metrics http.Handler, pprof bool) (*metricsListener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on the metrics address: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	if pprof {
		servePprof(mux)
	}
	return &metricsListener{ln: ln, url: "http://" + ln.Addr().String(),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}}, nil
}

func (m *metricsListener) serve(log *slog.Logger) {
	if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics server stopped", "err", err)
	}
}

// close stops it; nil-safe. Scrapes are short: no drain.
func (m *metricsListener) close() {
	if m != nil {
		_ = m.srv.Close()
	}
}

// servePprof adds Go's profiles to mux. Each is a GET; a CPU profile or
// trace takes ?seconds=N and runs that long.
func servePprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
