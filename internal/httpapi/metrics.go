package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
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
	// held is set when the request's answer goes on after its handler
	// returned (hold): it is recorded at its end, by the goroutine that
	// ends it, not as the handler returns. route is r's pattern then: the
	// writer lets go of the request and of the answer net/http made, so
	// that a stream that outlives its handler does not keep them.
	held  atomic.Bool
	route string
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
// runs on the request's goroutine, or, once held, on the goroutine that
// ends its answer.
func (w *statusWriter) record() {
	if w.recorded {
		return
	}
	w.recorded = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	route := w.route
	if w.r != nil {
		route = w.r.Pattern // set by the mux on this request
	}
	if route == "" || route == "/" {
		route = "other"
	}
	w.m.requests.WithLabelValues(route, strconv.Itoa(w.status)).Inc()
	w.m.latency.WithLabelValues(route).Observe(time.Since(w.start).Seconds())
}

// hold keeps the request from being recorded as its handler returns: its
// answer goes on without net/http (a feed stream that took its connection
// over and detached from its handler), and record is called at its end.
// It must be called on the handler's goroutine, before the answer goes on
// on another; the writer is not written to after it.
func (w *statusWriter) hold() {
	w.route = w.r.Pattern
	w.r, w.ResponseWriter = nil, nil
	w.held.Store(true)
}

// instrumented returns the instrumented writer w is or wraps, if any: a
// feed stream records its request itself when its answer ends before its
// handlers return, or after they did (see openStream), for a client that
// saw the answer end must find it counted and timed, as under net/http,
// which ends an answer only once every handler has returned.
func instrumented(w http.ResponseWriter) *statusWriter {
	for {
		switch t := w.(type) {
		case *statusWriter:
			return t
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil
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
		if !sw.held.Load() {
			sw.record()
		}
	})
}
