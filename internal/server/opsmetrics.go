package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/store"
)

// opsCollector exports what operators alert on, read at each scrape: the
// revocations this node recorded by kind (theft among them),
// the store's write errors and whether it writes, and how long ago the
// revocation log was read to its end. No label names a user, session or
// token.
type opsCollector struct {
	a   *authority.Authority
	st  store.Store
	now func() time.Time
}

var (
	descRevocations = prometheus.NewDesc("tegata_revocations_total",
		"Revocations this node recorded since it started, by kind (session, subject, theft: a reused refresh token ended its session, binding_failed: a bound session's device failed a proof of its key, api_key).", []string{"kind"}, nil)
	descTheft = prometheus.NewDesc("tegata_refresh_reuse_total",
		"Refresh tokens presented again after rotation, outside the grace window (theft detections): each revoked its session.", nil, nil)
	descStoreErrors = prometheus.NewDesc("tegata_store_write_errors_total",
		"Writes to the store that failed for a reason of the database's (not a conflict or a missing row) since this node started.", nil, nil)
	descWritable = prometheus.NewDesc("tegata_store_writable",
		"1 while the store accepts writes, 0 from a refused write (full disk, read-only database) until a write probe succeeds.", nil, nil)
	descLogAge = prometheus.NewDesc("tegata_store_log_read_age_seconds",
		"Seconds since this node last read the revocation log to its end; past 10 it is not ready (its store does not answer).", nil, nil)
)

func (opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRevocations, descTheft, descStoreErrors, descWritable, descLogAge} {
		ch <- d
	}
}

func (c opsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.a.Counters()
	for kind, n := range counts {
		ch <- prometheus.MustNewConstMetric(descRevocations, prometheus.CounterValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(descTheft, prometheus.CounterValue, float64(counts[authority.RevokedTheft]))
	if s, ok := c.st.(interface{ WriteErrors() uint64 }); ok {
		ch <- prometheus.MustNewConstMetric(descStoreErrors, prometheus.CounterValue, float64(s.WriteErrors()))
	}
	if wh, ok := c.st.(store.WriteHealth); ok {
		writable := 1.0
		if wh.Unwritable() != nil {
			writable = 0
		}
		ch <- prometheus.MustNewConstMetric(descWritable, prometheus.GaugeValue, writable)
	}
	ch <- prometheus.MustNewConstMetric(descLogAge, prometheus.GaugeValue, max(0, c.now().Sub(c.a.LogReadAt()).Seconds()))
}
