package bench

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Fault kinds the chaos nemesis injects.
const (
	faultNodeKill      = "node-kill"        // SIGKILL an authority node; restart it after Dur
	faultNodePause     = "node-pause"       // SIGSTOP a node; SIGCONT after Dur
	faultGateKill      = "gate-kill"        // SIGKILL a gate; restart it after Dur
	faultGatePause     = "gate-pause"       // SIGSTOP a gate; SIGCONT after Dur
	faultIsolate       = "verifier-isolate" // cut off Count verifiers from every node (Mode) for Dur
	faultCut           = "verifier-cut"     // cut the open streams of Count verifiers
	faultDelay         = "verifier-delay"   // delay Count verifiers' links by Arg ms for Dur
	faultGateIsolate   = "gate-isolate"     // cut off a gate from every node (Mode) for Dur
	faultGateCut       = "gate-cut"         // cut a gate's open streams
	faultNodeStall     = "node-stall"       // stall one direction of every stream into a node for Dur
	faultRestart       = "verifier-restart" // a verifier restarted from nothing, its clock off by Arg ms
	faultKeyRotate     = "key-rotate"       // tegata keys rotate
	faultAPIKeyRevoke  = "apikey-revoke"    // revoke the feed key of verifier group Target; new key after Dur
	faultPGLock        = "pg-lock"          // hold the revocation log locked (pg_sleep) for Dur
	faultPGStall       = "pg-stall"         // stall a node's Postgres connections for Dur
	faultPGRestart     = "pg-restart"       // restart the Postgres server (only with --pg-restart)
	isolatePartition   = "partition"        // Modes of an isolation: connections cut and refused
	isolateStallUp     = "stall-up"         // ... requests held, answers pass
	isolateStallDown   = "stall-down"       // ... answers held
	apiKeyGroupSize    = 25                 // verifiers sharing one feed key
	maxNodesDown       = 2                  // nodes killed or paused at once, at most
	scheduleWarmUp     = 5 * time.Second    // no fault before
	scheduleCoolDown   = 5 * time.Second    // no fault starts this close to the end
	maxClockSkewMillis = 20_000             // verifiers' clock offsets: within the 30 s leeway
)

// fault is one entry of the nemesis's schedule.
type fault struct {
	At     time.Duration `json:"at"`
	Kind   string        `json:"kind"`
	Target int           `json:"target"`          // node, gate, first verifier or key group
	Count  int           `json:"count,omitempty"` // verifiers from Target on
	Mode   string        `json:"mode,omitempty"`
	Dur    time.Duration `json:"dur,omitempty"`
	Arg    int64         `json:"arg,omitempty"`
}

func (f fault) String() string {
	s := fmt.Sprintf("%s %s target %d", f.At.Round(time.Millisecond), f.Kind, f.Target)
	if f.Count > 0 {
		s += fmt.Sprintf("+%d", f.Count)
	}
	if f.Mode != "" {
		s += " " + f.Mode
	}
	if f.Dur > 0 {
		s += " for " + f.Dur.Round(time.Millisecond).String()
	}
	if f.Arg != 0 {
		s += fmt.Sprint(" arg ", f.Arg)
	}
	return s
}

// scheduleShape is what a schedule is drawn for.
type scheduleShape struct {
	Duration, Interval      time.Duration
	Nodes, Gates, Verifiers int
	PGRestart               bool
}

// weightedKinds are the faults and how often each is drawn.
var weightedKinds = []struct {
	kind   string
	weight int
}{
	{faultNodeKill, 6}, {faultNodePause, 6}, {faultGateKill, 4}, {faultGatePause, 4},
	{faultIsolate, 10}, {faultCut, 6}, {faultDelay, 5}, {faultGateIsolate, 5}, {faultGateCut, 3},
	{faultNodeStall, 5}, {faultRestart, 8}, {faultKeyRotate, 2}, {faultAPIKeyRevoke, 2},
	{faultPGLock, 4}, {faultPGStall, 4}, {faultPGRestart, 1},
}

// chaosSchedule draws the faults of a run from seed alone: the same seed
// and shape give the same schedule, whatever happens while it runs.
// Faults overlap, except that one target takes one fault at a time and at
// most maxNodesDown nodes are down at once.
func chaosSchedule(seed uint64, s scheduleShape) []fault {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed_c4a0_5eed_c4a0))
	busy := map[string]time.Duration{} // target → busy until
	var out []fault
	for at := scheduleWarmUp; ; {
		at += time.Duration(float64(s.Interval) * (0.5 + rng.Float64()))
		if at > s.Duration-scheduleCoolDown {
			return out
		}
		if f, ok := drawFault(rng, s, at, busy); ok {
			out = append(out, f)
		}
	}
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)).Truncate(time.Millisecond)
}

// drawFault draws one fault at at; false when the drawn target is busy.
func drawFault(rng *rand.Rand, s scheduleShape, at time.Duration, busy map[string]time.Duration) (fault, bool) {
	kind := drawKind(rng, s.PGRestart)
	f := fault{At: at, Kind: kind}
	var key string
	switch kind {
	case faultNodeKill, faultNodePause, faultNodeStall, faultPGStall:
		f.Target = rng.IntN(s.Nodes)
		f.Dur = between(rng, time.Second, 12*time.Second)
		key = fmt.Sprint("node", f.Target)
		if (kind == faultNodeKill || kind == faultNodePause) && nodesDown(busy, at) >= maxNodesDown {
			return f, false
		}
	case faultGateKill, faultGatePause, faultGateIsolate, faultGateCut:
		f.Target = rng.IntN(s.Gates)
		f.Dur = between(rng, time.Second, 10*time.Second)
		key = fmt.Sprint("gate", f.Target)
	case faultIsolate, faultCut, faultDelay, faultRestart:
		f.Count = 1 + rng.IntN(min(10, s.Verifiers))
		f.Target = rng.IntN(s.Verifiers - f.Count + 1)
		f.Dur = between(rng, 2*time.Second, 15*time.Second)
		key = fmt.Sprint("verifiers", f.Target/10)
	case faultAPIKeyRevoke:
		f.Target = rng.IntN((s.Verifiers + apiKeyGroupSize - 1) / apiKeyGroupSize)
		f.Dur = between(rng, 2*time.Second, 10*time.Second)
		key = fmt.Sprint("verifiers", f.Target*apiKeyGroupSize/10)
	case faultPGLock, faultPGRestart:
		f.Dur = between(rng, time.Second, 4*time.Second)
		key = "postgres"
	case faultKeyRotate:
		key = "keys"
	}
	switch kind {
	case faultIsolate, faultGateIsolate, faultNodeStall, faultPGStall:
		f.Mode = []string{isolatePartition, isolateStallUp, isolateStallDown}[rng.IntN(3)]
		if kind == faultNodeStall || kind == faultPGStall {
			f.Mode = []string{isolateStallUp, isolateStallDown}[rng.IntN(2)]
		}
	case faultDelay:
		f.Arg = 20 + rng.Int64N(480)
	case faultRestart:
		f.Arg = rng.Int64N(2*maxClockSkewMillis+1) - maxClockSkewMillis
		f.Dur = 0
	case faultCut, faultGateCut, faultKeyRotate:
		f.Dur = 0
	}
	if until, ok := busy[key]; ok && until > at {
		return f, false
	}
	busy[key] = at + f.Dur + time.Second
	if kind == faultNodeKill || kind == faultNodePause {
		busy[fmt.Sprint("down", f.Target)] = at + f.Dur + time.Second
	}
	return f, true
}

func drawKind(rng *rand.Rand, pgRestart bool) string {
	total := 0
	for _, k := range weightedKinds {
		if k.kind != faultPGRestart || pgRestart {
			total += k.weight
		}
	}
	n := rng.IntN(total)
	for _, k := range weightedKinds {
		if k.kind == faultPGRestart && !pgRestart {
			continue
		}
		if n < k.weight {
			return k.kind
		}
		n -= k.weight
	}
	panic("unreachable")
}

// nodesDown counts the nodes killed or paused at at.
func nodesDown(busy map[string]time.Duration, at time.Duration) int {
	n := 0
	for k, until := range busy {
		if len(k) > 4 && k[:4] == "down" && until > at {
			n++
		}
	}
	return n
}
