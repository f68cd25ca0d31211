package gate_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/verifier"
)

// TestMetrics: the gate counts requests by outcome and refusals by reason,
// and exports the verifier's state, on the registry it is given.
func TestMetrics(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	waitReady(t, v)
	reg := prometheus.NewRegistry()
	g := startGate(t, v, gate.Config{Metrics: reg})
	live := a.signIn(t, "gina", nil)
	dead := a.signIn(t, "gina", nil)
	a.revoke(t, dead.SessionID)
	eventually(t, revocationDeadline, "the revocation to reach the gate", func() bool {
		_, err := v.Verify(testContext(t), dead.AccessToken)
		return err != nil
	})

	do(t, "GET", g.URL+"/auth", bearer(live.AccessToken))
	do(t, "GET", g.URL+"/auth", bearer(dead.AccessToken))
	do(t, "GET", g.URL+"/auth", nil)
	do(t, "GET", g.URL+"/elsewhere", nil)

	for _, tc := range []struct {
		name string
		want float64
	}{
		{"allowed", 1},
		{"refused", 2},
		{"not_found", 1},
	} {
		if got := counterValue(t, reg, "tegata_gate_requests_total", "outcome", tc.name); got != tc.want {
			t.Errorf("tegata_gate_requests_total{outcome=%q} = %v, want %v", tc.name, got, tc.want)
		}
	}
	for reason, want := range map[string]float64{"revoked": 1, "no_token": 1} {
		if got := counterValue(t, reg, "tegata_gate_refusals_total", "reason", reason); got != want {
			t.Errorf("tegata_gate_refusals_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	for name, want := range map[string]float64{"tegata_gate_stale": 0, "tegata_gate_revocation_entries": 1, "tegata_gate_keys": 1} {
		if got := gaugeValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestNewRefusesMisconfiguration: New returns an error, never panics, for
// what it cannot serve; a second gate on the same registry leaves the
// first one's metrics in place.
func TestNewRefusesMisconfiguration(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	reg := prometheus.NewRegistry()
	if _, err := gate.New(v, gate.Config{Metrics: reg}); err != nil {
		t.Fatalf("New(first gate on reg) = %v", err)
	}
	first := countMetrics(t, reg)
	web, err := gate.NewWeb(v, gate.WebConfig{Authority: &client.Client{BaseURL: a.URL, APIKey: a.APIKey}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		v    *verifier.Verifier
		cfg  gate.Config
		want string
	}{
		{"no verifier", nil, gate.Config{}, "needs a verifier"},
		{"web without upstream", v, gate.Config{Web: web}, "Config.Web needs Config.Upstream"},
		{"metrics registered already", v, gate.Config{Metrics: reg}, "give each gate its own registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := gate.New(tt.v, tt.cfg)
			if err == nil || h != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, %v, want an error saying %q", h, err, tt.want)
			}
		})
	}
	if n := countMetrics(t, reg); n != first {
		t.Errorf("metrics on the registry after a refused second gate = %d families, want the first gate's %d", n, first)
	}
}

func countMetrics(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return len(mfs)
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
