package bench

import (
	"slices"
	"testing"
	"time"
)

var testShape = scheduleShape{Duration: 10 * time.Minute, Interval: 3 * time.Second, Nodes: 3, Gates: 4, Verifiers: 200}

func TestChaosScheduleDeterministic(t *testing.T) {
	a, b := chaosSchedule(7, testShape), chaosSchedule(7, testShape)
	if !slices.Equal(a, b) {
		t.Fatal("chaosSchedule(7) differs between two calls")
	}
	if c := chaosSchedule(8, testShape); slices.Equal(a, c) {
		t.Error("chaosSchedule(7) = chaosSchedule(8)")
	}
	if len(a) < 100 {
		t.Errorf("chaosSchedule(7) over 10 minutes has %d faults, want at least 100", len(a))
	}
}

func TestChaosScheduleShape(t *testing.T) {
	kinds := map[string]int{}
	for seed := range uint64(3) {
		fs := chaosSchedule(seed, testShape)
		for i, f := range fs {
			kinds[f.Kind]++
			if f.At < scheduleWarmUp || f.At > testShape.Duration-scheduleCoolDown {
				t.Errorf("seed %d: %v outside the run's faulty part", seed, f)
			}
			if f.Kind == faultRestart && (f.Arg < -maxClockSkewMillis || f.Arg > maxClockSkewMillis) {
				t.Errorf("seed %d: %v: clock skew beyond %d ms", seed, f, maxClockSkewMillis)
			}
			if down := nodesDownAt(fs[:i+1], f.At); down > maxNodesDown {
				t.Errorf("seed %d: %d nodes down at %v", seed, down, f.At)
			}
		}
	}
	for _, k := range weightedKinds {
		if k.kind == faultPGRestart {
			if kinds[k.kind] != 0 {
				t.Errorf("%d Postgres restarts drawn without --pg-restart", kinds[k.kind])
			}
			continue
		}
		if kinds[k.kind] == 0 {
			t.Errorf("no %s drawn in three 10-minute schedules", k.kind)
		}
	}
	withPG := 0
	for _, f := range chaosSchedule(1, scheduleShape{Duration: 10 * time.Minute, Interval: 3 * time.Second, Nodes: 3, Gates: 4, Verifiers: 200, PGRestart: true}) {
		if f.Kind == faultPGRestart {
			withPG++
		}
	}
	if withPG == 0 {
		t.Error("no Postgres restart drawn with PGRestart in 10 minutes")
	}
}

// nodesDownAt counts the kills and pauses of fs still in effect at at.
func nodesDownAt(fs []fault, at time.Duration) int {
	n := 0
	for _, f := range fs {
		if (f.Kind == faultNodeKill || f.Kind == faultNodePause) && f.At <= at && at < f.At+f.Dur {
			n++
		}
	}
	return n
}
