package buildinfo

import "github.com/prometheus/client_golang/prometheus"

// Collector returns the tegata_build_info gauge: always 1, labelled with
// the running binary's version and commit, for dashboards to show what runs
// where and alerts to tell a mixed fleet.
func Collector() prometheus.Collector {
	i := Read()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "tegata_build_info",
		Help:        "Always 1; the labels name the build (module version and VCS commit).",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.Commit()}})
	g.Set(1)
	return g
}
