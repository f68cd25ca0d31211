package gate

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tegata-dev/tegata/verifier"
)

// metrics counts what the gate answers. Labels are fixed, small sets: never
// a user, session, token or path. A nil *metrics records nothing.
type metrics struct {
	requests  *prometheus.CounterVec // by outcome
	refusals  *prometheus.CounterVec // by verifier.Code
	upstreams prometheus.Counter
	dbsc      *prometheus.CounterVec // Device Bound Session Credentials, by event
}

// Outcomes of a request the gate checks.
const (
	outcomeAllowed  = "allowed"   // verified: 200 (forward-auth) or forwarded (proxy)
	outcomeRefused  = "refused"   // 401
	outcomeNotFound = "not_found" // forward-auth, a path the gate does not answer
)

// newMetrics registers the gate's metrics, and gauges of v's state read at
// each scrape, with reg. Nil reg: no metrics. If one cannot be registered
// (another gate's are there), none is left registered.
func newMetrics(reg prometheus.Registerer, v *verifier.Verifier) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tegata_gate_requests_total", Help: "Requests the gate checked, by outcome (allowed, refused, not_found).",
		}, []string{"outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tegata_gate_refusals_total", Help: "Refused requests by reason (verifier.Code: no_token, expired, revoked, stale, issuer, audience, unknown_key, ...).",
		}, []string{"reason"}),
		upstreams: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tegata_gate_upstream_errors_total", Help: "Verified requests the upstream did not answer (502).",
		}),
		dbsc: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tegata_gate_dbsc_total", Help: "Device Bound Session Credentials at the web gate, by event: registered, registration_refused, challenged, refreshed, refresh_refused (the session is over, or a proof was signed by another key and it was revoked), cookie_refresh_refused (a bound session refreshed by cookie alone: copied cookies, or a browser whose DBSC refresh was skipped).",
		}, []string{"event"}),
	}
	for _, e := range dbscEvents {
		m.dbsc.WithLabelValues(e)
	}
	for _, o := range []string{outcomeAllowed, outcomeRefused, outcomeNotFound} {
		m.requests.WithLabelValues(o)
	}
	cs := []prometheus.Collector{m.requests, m.refusals, m.upstreams, m.dbsc, stateCollector{v}}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("gate: Config.Metrics: %w (give each gate its own registry)", err)
		}
	}
	return m, nil
}

func (m *metrics) outcome(o string) {
	if m != nil {
		m.requests.WithLabelValues(o).Inc()
	}
}

func (m *metrics) refused(err error) {
	if m != nil {
		m.requests.WithLabelValues(outcomeRefused).Inc()
		m.refusals.WithLabelValues(verifier.Code(err)).Inc()
	}
}

func (m *metrics) upstreamError() {
	if m != nil {
		m.upstreams.Inc()
	}
}

// stateCollector exports the verifier's State, read once per scrape.
type stateCollector struct{ v *verifier.Verifier }

var (
	descStale = prometheus.NewDesc("tegata_gate_stale",
		"1 while the revocation state cannot be trusted (tokens are refused or introspected), else 0.", nil, nil)
	descLag = prometheus.NewDesc("tegata_gate_feed_lag_seconds",
		"Seconds since the authority was last heard on the feed.", nil, nil)
	descEntries = prometheus.NewDesc("tegata_gate_revocation_entries",
		"Entries in the revocation set.", nil, nil)
	descPosition = prometheus.NewDesc("tegata_gate_feed_position",
		"Last revocation log seq applied.", nil, nil)
	descHead = prometheus.NewDesc("tegata_gate_feed_head",
		"Highest revocation log seq the authority announced.", nil, nil)
	descKeys = prometheus.NewDesc("tegata_gate_keys",
		"Keys in the authority's key set as last fetched.", nil, nil)
	descAuthorities = prometheus.NewDesc("tegata_gate_authorities",
		"Authority nodes the gate fails over between: those it was given and those the cluster advertises.", nil, nil)
	descSkew = prometheus.NewDesc("tegata_gate_clock_skew_seconds",
		"The authority's clock minus this gate's, from the Date of its answers (0 within about a second); beyond the leeway every token is refused.", nil, nil)
)

func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStale, descLag, descEntries, descPosition, descHead, descKeys, descSkew, descAuthorities} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.v.State()
	stale := 0.0
	if !st.Ready {
		stale = 1
	}
	for _, m := range []struct {
		d *prometheus.Desc
		v float64
	}{
		{descStale, stale}, {descLag, st.Lag.Seconds()}, {descEntries, float64(st.Entries)},
		{descPosition, float64(st.Position)}, {descHead, float64(st.Head)}, {descKeys, float64(st.Keys)},
		{descSkew, st.ClockSkew.Seconds()}, {descAuthorities, float64(st.Authorities)},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, m.v)
	}
}
