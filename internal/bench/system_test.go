package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/bench"
)

// These runs are small versions of the system benchmarks: they prove the
// machinery (processes, feed, gates, the bulk revocation API) works, not
// any speed, so they run in parallel, each on a schema and ports of its
// own.

func TestPropagationShort(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := bench.Propagation(ctx, bench.PropagationConfig{Setup: setup(t), Authorities: 1, Gates: 1, Rate: 20, Duration: time.Second,
		ConfirmRate: 20, ConfirmDuration: time.Second})
	if err != nil {
		t.Fatalf("Propagation = %v", err)
	}
	if r.Failed() {
		t.Fatalf("Propagation failures: %v", r.Failures)
	}
	if got := result(t, r, "revocations checked (rejected by every gate)"); got != 20 {
		t.Errorf("revocations checked = %v, want 20", got)
	}
	// Of the confirm phase's 20, every other one is sent with ?confirm=.
	if got := result(t, r, "confirmed revocations refused by every gate at the first request after the call"); got != 10 {
		t.Errorf("confirmed revocations refused by every gate = %v, want 10", got)
	}
}

func TestFloodShort(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := bench.Flood(ctx, bench.FloodConfig{Setup: setup(t), Authorities: 1, Gates: 1,
		Revocations: 2000, Batch: 500, Bulk: 300, Canaries: 10, Idle: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("Flood = %v", err)
	}
	if r.Failed() {
		t.Fatalf("Flood failures: %v", r.Failures)
	}
	if got := result(t, r, "verifier entries after the flood"); got != 2300 {
		t.Errorf("verifier entries = %v, want 2300 (the bulk revocation's 300 and the burst's 2000)", got)
	}
	if got := result(t, r, "bulk revocation of 300 subjects: call → every gate rejects"); got <= 0 {
		t.Errorf("bulk revocation end to end = %v s, want a time", got)
	}
}

// result returns the value of the result named name.
func result(t *testing.T, r *bench.Report, name string) float64 {
	t.Helper()
	for _, res := range r.Results {
		if res.Name == name {
			return res.Value
		}
	}
	t.Fatalf("report has no result %q", name)
	return 0
}

func TestGateShort(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Each of the three targets is warmed up, then measured.
	r, err := bench.Gate(ctx, bench.GateConfig{Setup: setup(t), Workers: 2, Duration: 200 * time.Millisecond, Tokens: 4,
		Warmup: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Gate = %v", err)
	}
	if r.Failed() {
		t.Fatalf("Gate failures: %v", r.Failures)
	}
	if got := result(t, r, "gate reverse proxy → upstream: throughput"); got <= 0 {
		t.Errorf("reverse proxy throughput = %v, want > 0", got)
	}
}
