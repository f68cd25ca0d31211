package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are labelled by route pattern and status only: never by user,
// session or token.
var (
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tegata_http_requests_total", Help: "Authority HTTP requests by route and status.",
	}, []string{"route", "code"})
	latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tegata_http_request_duration_seconds", Help: "Authority HTTP latency by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"route"})
)

// Register adds the HTTP metrics to reg.
func Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{requests, latency} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
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

func instrument(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		mux.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		route := r.Pattern // set by the mux on this request
		if route == "" || route == "/" {
			route = "other"
		}
		requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
