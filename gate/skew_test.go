package gate_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/verifier"
)

// TestClockSkew runs a gate whose clock is two minutes behind the
// authority's, four times the leeway: every token is refused as not yet
// valid, and the gate says why in its log (at Warn), in
// tegata_gate_clock_skew_seconds and in /readyz.
func TestClockSkew(t *testing.T) {
	a := startAuthority(t)
	var logs logBuffer
	behind := clock.Offset(clock.Real, -2*time.Minute)
	v := newVerifier(t, a.URL, a.APIKey, logs.logger(), func(c *verifier.Config) { c.Clock = behind })
	reg := prometheus.NewRegistry()
	g := startGate(t, v, gate.Config{Metrics: reg})
	tok := a.signIn(t, "sam", nil)

	if _, err := v.Verify(testContext(t), tok.AccessToken); verifier.Code(err) != "not_yet_valid" {
		t.Errorf("Verify(token from an authority 2m ahead) = %v, want not_yet_valid", err)
	}
	if got := gaugeValue(t, reg, "tegata_gate_clock_skew_seconds"); got < 110 || got > 130 {
		t.Errorf("tegata_gate_clock_skew_seconds = %v, want about 120", got)
	}
	res, err := http.Get(g.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var body struct {
		Reason    string
		ClockSkew float64 `json:"clock_skew_seconds"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("/readyz body %q: %v", b, err)
	}
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body.Reason, "clock differs") || body.ClockSkew < 110 {
		t.Errorf("/readyz with a skewed clock = %d %s, want 503 naming the clock and its skew", res.StatusCode, b)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "differs from the authority's by more than the leeway") {
		t.Errorf("log = %q, want a warning about the clock", l)
	}
}

// TestClockInAgreement: a gate on the authority's clock reports no skew
// and is ready.
func TestClockInAgreement(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	waitReady(t, v)
	reg := prometheus.NewRegistry()
	startGate(t, v, gate.Config{Metrics: reg})
	if got := gaugeValue(t, reg, "tegata_gate_clock_skew_seconds"); got != 0 {
		t.Errorf("tegata_gate_clock_skew_seconds = %v, want 0", got)
	}
	if st := v.State(); !st.Ready || st.ClockSkew != 0 {
		t.Errorf("State() = %+v, want ready with no skew", st)
	}
}
