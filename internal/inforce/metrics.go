package inforce

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a Cluster's own collectors: each server instance registers
// its Cluster's, so nothing is shared between instances in one process.
type metrics struct {
	confirms *prometheus.CounterVec
	waited   prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		confirms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tegata_confirm_total", Help: "Revocations waited on with confirm, by outcome (in_force or timeout).",
		}, []string{"outcome"}),
		waited: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tegata_confirm_wait_seconds", Help: "How long confirmed revocations waited.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, 1, 5, 30},
		}),
	}
}

func (m *metrics) observe(c Confirmation) {
	outcome := "in_force"
	if !c.InForce {
		outcome = "timeout"
	}
	m.confirms.WithLabelValues(outcome).Inc()
	m.waited.Observe(float64(c.WaitedMS) / 1000)
}

var (
	descVerifiers = prometheus.NewDesc("tegata_verifiers",
		"Verifiers of the cluster by state (current, behind, stale; stale also counts, for 5 minutes, one silent past its staleness bound that did not restart).", []string{"state"}, nil)
	descLagEntries = prometheus.NewDesc("tegata_verifiers_worst_lag_entries",
		"The largest number of log entries a live verifier lacks.", nil, nil)
	descLagSeconds = prometheus.NewDesc("tegata_verifiers_worst_lag_seconds",
		"The largest lag of a live verifier: how long before it was last heard the oldest entry it lacked was recorded.", nil, nil)
)

// Collector returns the Cluster's metrics: confirm outcomes and waits, and,
// from a listing of the cluster's verifiers at most metricsEvery old, the
// count of verifiers per state and the worst lag.
func (c *Cluster) Collector() prometheus.Collector { return collector{c} }

// metricsEvery is how long one listing serves the verifier gauges. Anyone
// may scrape /metrics, as often as they like; a listing reads the store
// (node and verifier records, the log's head, up to maxLagLookups log
// entries), so scrapes share one listing per metricsEvery, whatever their
// number, and concurrent scrapes wait for the one listing under way.
const metricsEvery = 5 * time.Second

// listCache is the listing the gauges last used.
type listCache struct {
	mu sync.Mutex
	at time.Time // zero: none yet
	l  Listing
	// silent: verifiers silent past their bound, left out of l (see
	// silent).
	silent int
	err    error
}

// metricsList returns a listing at most metricsEvery old, making one if
// needed.
func (c *Cluster) metricsList() (Listing, int, error) {
	lc := &c.listCache
	lc.mu.Lock()
	defer lc.mu.Unlock()
	now := c.cfg.Clock.Now()
	if !lc.at.IsZero() && !now.Before(lc.at) && now.Sub(lc.at) < metricsEvery {
		return lc.l, lc.silent, lc.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lc.l, lc.silent, lc.err = c.list(ctx)
	lc.at = now
	return lc.l, lc.silent, lc.err
}

type collector struct{ c *Cluster }

func (x collector) Describe(ch chan<- *prometheus.Desc) {
	x.c.metrics.confirms.Describe(ch)
	x.c.metrics.waited.Describe(ch)
	ch <- descVerifiers
	ch <- descLagEntries
	ch <- descLagSeconds
}

func (x collector) Collect(ch chan<- prometheus.Metric) {
	x.c.metrics.confirms.Collect(ch)
	x.c.metrics.waited.Collect(ch)
	l, silent, err := x.c.metricsList()
	if err != nil {
		x.c.log.Warn("inforce: metrics: listing verifiers failed", "err", err)
		return
	}
	count := map[string]int{StateCurrent: 0, StateBehind: 0, StateStale: 0}
	var lagEntries, lagMS int64
	for _, v := range l.Verifiers {
		count[v.State]++
		lagEntries, lagMS = max(lagEntries, v.LagEntries), max(lagMS, v.LagMS)
	}
	// A verifier gone silent past its bound is stale until SilentHold has
	// passed or it restarted.
	count[StateStale] += silent
	for state, n := range count {
		ch <- prometheus.MustNewConstMetric(descVerifiers, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(descLagEntries, prometheus.GaugeValue, float64(lagEntries))
	ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, float64(lagMS)/1000)
}
