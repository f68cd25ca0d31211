package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the HTTP metrics of one server, labelled by route pattern and
// status only: never by user, session or token. Each server has its own,
// registered with its own registry, so that two servers in one process (as
// in tests) neither share counts nor collide.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics creates the HTTP metrics and registers them with reg. It fails
// if reg already holds metrics of the same names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tegata_http_requests_total", Help: "Authority HTTP requests by route and status.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tegata_http_request_duration_seconds", Help: "Authority HTTP latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("httpapi: register metrics: %w", err)
		}
	}
	return m, nil
}

// statusWriter notes the status a request is answered with, and records
// the request's metrics once (record).
type statusWriter struct {
	http.ResponseWriter
	status int
	// What record needs; recorded is set once it has.
	m        *Metrics
	r        *http.Request
	start    time.Time
	recorded bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Flush keeps streaming (the feed) working through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// record counts and times the request, the first time it is called; it
// runs on the request's goroutine.
func (w *statusWriter) record() {
	if w.recorded {
		return
	}
	w.recorded = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	route := w.r.Pattern // set by the mux on this request
	if route == "" || route == "/" {
		route = "other"
	}
	w.m.requests.WithLabelValues(route, strconv.Itoa(w.status)).Inc()
	w.m.latency.WithLabelValues(route).Observe(time.Since(w.start).Seconds())
}

// recordNow records the metrics of the request w answers now rather than
// once its handler returns, when w is (or wraps) an instrumented writer:
// a feed stream that took its connection over ends its answer before its
// handlers return (feed.WithEndHook), and a client that saw the answer
// end must find it counted and timed, as under net/http, which ends an
// answer only once every handler has returned.
func recordNow(w http.ResponseWriter) {
	for {
		switch t := w.(type) {
		case *statusWriter:
			t.record()
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return
		}
	}
}

// instrument counts and times every request to mux; with nil metrics it
// returns mux itself.
func (m *Metrics) instrument(mux *http.ServeMux) http.Handler {
	if m == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, m: m, r: r, start: time.Now()}
		mux.ServeHTTP(sw, r)
		sw.record()
	})
}
