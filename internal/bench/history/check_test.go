package history

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

var params = Params{Grace: 10 * time.Second, LeaseBound: 25 * time.Second}

func sec(s float64) int64 { return int64(s * float64(time.Second)) }

// A history every rule passes: a session created, refreshed twice at once
// within the grace window (same successor), the successor used, the
// session revoked with ?confirm=, and then refused everywhere; a verifier
// cut off that went stale in time; a subject cut off for old tokens only.
func cleanHistory() []Event {
	return []Event{
		{T: 1, P: "v1", Kind: KindStart, StaleMS: 10_000},
		{T: 1, P: "v2", Kind: KindStart, StaleMS: 10_000},
		{Start: sec(1), T: sec(1.1), P: "load", Kind: KindSession, OK: true, SID: "s1", Sub: "alice", Tok: "a1", SGen: 1, NewRT: "r1"},
		{Start: sec(2), T: sec(2.1), P: "load", Kind: KindRefresh, OK: true, SID: "s1", RT: "r1", NewRT: "r2", Tok: "a2", SGen: 1},
		{Start: sec(2), T: sec(2.2), P: "load", Kind: KindRefresh, OK: true, SID: "s1", RT: "r1", NewRT: "r2", Tok: "a2", SGen: 1},
		{Start: sec(3), T: sec(3.1), P: "load", Kind: KindRefresh, OK: true, SID: "s1", RT: "r2", NewRT: "r3", Tok: "a3", SGen: 1},
		{Start: sec(3), T: sec(3.01), P: "v1", Kind: KindVerify, Verdict: Accept, Tok: "a3", SID: "s1", Sub: "alice", SGen: 1, Pos: 4, PosAfter: 4},
		{Start: sec(4), T: sec(4.2), P: "load", Kind: KindRevoke, Op: 1, OK: true, Scope: ScopeSession, SID: "s1", Seq: 5, Confirm: true, InForce: true},
		// Sent before the answer, so it may still be accepted.
		{Start: sec(4.1), T: sec(4.3), P: "v2", Kind: KindVerify, Verdict: Accept, Tok: "a3", SID: "s1", Sub: "alice", SGen: 1, Pos: 4, PosAfter: 4},
		{Start: sec(4.3), T: sec(4.31), P: "v1", Kind: KindVerify, Detail: Follow, Op: 1, Verdict: Revoked, Tok: "a3", SID: "s1", Sub: "alice", SGen: 1, Pos: 5, PosAfter: 5},
		{Start: sec(4.4), T: sec(4.41), P: "v2", Kind: KindVerify, Detail: Follow, Op: 1, Verdict: Stale, Tok: "a3", SID: "s1", Sub: "alice", SGen: 1, Pos: 4, PosAfter: 4},
		// A reuse outside the window, refused; the session was revoked anyway.
		{Start: sec(20), T: sec(20.1), P: "load", Kind: KindRefresh, Verdict: InvalidGrant, SID: "s1", RT: "r1"},
		{T: sec(30), P: "v2", Kind: KindLink, Detail: "isolated"},
		{T: sec(35), P: "v2", Kind: KindState, Ready: true, PosAfter: 5},
		{T: sec(41), P: "v2", Kind: KindState, Ready: false, PosAfter: 5},
		{T: sec(50), P: "v2", Kind: KindLink, Detail: "healed"},
		{Start: sec(51), T: sec(51.1), P: "load", Kind: KindSession, OK: true, SID: "s2", Sub: "bob", Tok: "b1", SGen: 1, NewRT: "q1"},
		{Start: sec(52), T: sec(52.1), P: "load", Kind: KindRevoke, Op: 2, OK: true, Scope: ScopeAccess, Sub: "bob", Seq: 6, SGen: 2},
		{Start: sec(53), T: sec(53.1), P: "load", Kind: KindRefresh, OK: true, SID: "s2", RT: "q1", NewRT: "q2", Tok: "b2", SGen: 2},
		// A token of the new generation is not covered by the cutoff.
		{Start: sec(54), T: sec(54.01), P: "v1", Kind: KindVerify, Verdict: Accept, Tok: "b2", SID: "s2", Sub: "bob", SGen: 2, Pos: 6, PosAfter: 6},
		{Start: sec(54), T: sec(54.01), P: "v1", Kind: KindVerify, Detail: Follow, Op: 2, Verdict: Revoked, Tok: "b1", SID: "s2", Sub: "bob", SGen: 1, Pos: 6, PosAfter: 6},
		{T: sec(90), P: "v1", Kind: KindFinal, Pos: 6},
		{T: sec(90), P: "v2", Kind: KindFinal, Pos: 7},
		{T: sec(91), P: "audit", Kind: KindLogged, Seq: 5, SID: "s1"},
		{T: sec(91), P: "audit", Kind: KindLogged, Seq: 6, Sub: "bob", SGen: 2},
		{T: sec(91), P: "audit", Kind: KindStored, SID: "s1"},
		{T: sec(91), P: "audit", Kind: KindStored, SID: "s2"},
		{T: sec(91), P: "audit", Kind: KindAudited},
	}
}

func TestCheckClean(t *testing.T) {
	res := Check(cleanHistory(), params)
	for _, v := range res.Violations {
		t.Errorf("Check(clean) found %v", v)
	}
	for _, rule := range []string{RuleConfirmed, RuleApplied, RuleLease, RuleUnreached, RuleRefresh, RuleStale, RuleLost} {
		if res.Checks[rule] == 0 {
			t.Errorf("Check(clean).Checks[%s] = 0, want the rule applied", rule)
		}
	}
	if got := len(res.Enforced); got != 3 {
		t.Errorf("len(Enforced) = %d, want 3 (v1 and v2 for seq 5, v1 for seq 6)", got)
	}
	want := []time.Duration{110 * time.Millisecond, 210 * time.Millisecond, 1910 * time.Millisecond}
	slices.Sort(res.Enforced)
	if !slices.EqualFunc(res.Enforced, want, func(a, b time.Duration) bool { return (a - b).Abs() < time.Millisecond }) {
		t.Errorf("Enforced = %v, want %v", res.Enforced, want)
	}
}

// Each case adds events to the clean history (or changes it) and names
// the rule and the line (1-based, in the resulting history) of the event
// the checker must name.
func TestCheckViolations(t *testing.T) {
	n := len(cleanHistory())
	add := func(evs ...Event) func([]Event) []Event {
		return func(h []Event) []Event { return append(h, evs...) }
	}
	tests := []struct {
		name   string
		change func([]Event) []Event
		rule   string
		line   int
		text   string
	}{
		{"accepted after confirmed in force", add(Event{Start: sec(4.25), T: sec(4.26), P: "gate1", Kind: KindVerify, Verdict: Accept, Tok: "a3", SID: "s1", Sub: "alice", SGen: 1}),
			RuleConfirmed, n + 1, "answered in force"},
		{"accepted after applied", add(Event{Start: sec(4.15), T: sec(4.16), P: "v3", Kind: KindVerify, Verdict: Accept, Tok: "a3", SID: "s1", Sub: "alice", SGen: 1, Pos: 5, PosAfter: 5}),
			RuleApplied, n + 1, "includes seq 5"},
		{"subject cutoff applied", add(Event{Start: sec(55), T: sec(55.01), P: "v3", Kind: KindVerify, Verdict: Accept, Tok: "b1", SID: "s2", Sub: "bob", SGen: 1, Pos: 6, PosAfter: 6}),
			RuleApplied, n + 1, "seq 6"},
		{"bulk subject cutoff, its generation read from the log", func(h []Event) []Event {
			h[17].SGen = 0 // the revocation of bob, as a bulk call answers it
			return append(h, Event{Start: sec(55), T: sec(55.01), P: "v3", Kind: KindVerify, Verdict: Accept, Tok: "b1", SID: "s2", Sub: "bob", SGen: 1, Pos: 6, PosAfter: 6})
		}, RuleApplied, n + 1, "seq 6"},
		{"current without an entry older than the lease", add(Event{T: sec(80), P: "v3", Kind: KindState, Ready: true, PosAfter: 5}),
			RuleLease, n + 1, "without seq 6"},
		{"accepting without an entry older than the lease", add(Event{Start: sec(80), T: sec(80.01), P: "v3", Kind: KindVerify, Verdict: Accept, Tok: "x", SID: "s9", Sub: "carol", SGen: 1, Pos: 4, PosAfter: 4}),
			RuleLease, n + 1, "without seq 5"},
		{"acknowledged revocation never reached", add(Event{T: sec(90), P: "v3", Kind: KindFinal, Pos: 5}),
			RuleUnreached, n + 1, "missing 1 acknowledged revocation(s), the first seq 6"},
		{"revoked token accepted after settling", add(Event{Start: sec(92), T: sec(92.01), P: "gate1", Kind: KindVerify, Verdict: Accept, Final: true, Tok: "b1", SID: "s2", Sub: "bob", SGen: 1}),
			RuleUnreached, n + 1, "after the run settled"},
		{"refresh accepted outside the grace window", add(Event{Start: sec(15), T: sec(15.1), P: "load", Kind: KindRefresh, OK: true, SID: "s1", RT: "r2", NewRT: "r3", Tok: "a4", SGen: 1}),
			RuleRefresh, n + 1, "outside the 10s grace window"},
		{"refresh accepted after its successor was used", add(Event{Start: sec(3.5), T: sec(3.6), P: "load", Kind: KindRefresh, OK: true, SID: "s1", RT: "r1", NewRT: "r2", Tok: "a4", SGen: 1}),
			RuleRefresh, n + 1, "after its successor r2"},
		{"refresh forked the chain", add(Event{Start: sec(2.05), T: sec(2.3), P: "load", Kind: KindRefresh, OK: true, SID: "s1", RT: "r1", NewRT: "r9", Tok: "a9", SGen: 1}),
			RuleRefresh, n + 1, "forked"},
		{"refresh accepted after a refused reuse", add(
			Event{Start: sec(60), T: sec(60.1), P: "load", Kind: KindRefresh, Verdict: InvalidGrant, SID: "s2", RT: "q1"},
			Event{Start: sec(61), T: sec(61.1), P: "load", Kind: KindRefresh, OK: true, SID: "s2", RT: "q2", NewRT: "q3", Tok: "b3", SGen: 2}),
			RuleRefresh, n + 2, "reuse was refused"},
		{"accepted while it should have been stale", add(Event{Start: sec(45), T: sec(45.01), P: "v2", Kind: KindVerify, Verdict: Accept, Tok: "b9", SID: "s8", Sub: "dan", SGen: 1}),
			RuleStale, n + 1, "15s after it was cut off"},
		{"reported current while it should have been stale", add(Event{T: sec(40.5), P: "v2", Kind: KindState, Ready: true, PosAfter: 5}),
			RuleStale, n + 1, "reported current 10.5s"},
		{"acknowledged revocation lost", func(h []Event) []Event {
			return append(h[:n-5:n-5], h[n-4:]...) // drop "logged seq 5"
		}, RuleLost, 8, "seq 5 is not in the log"},
		{"log holds another entry", func(h []Event) []Event {
			h[n-4].Sub = "mallory" // logged seq 6
			return h
		}, RuleLost, 18, "another entry"},
		{"acknowledged session lost", func(h []Event) []Event {
			return append(h[:n-2:n-2], h[n-1:]...) // drop "stored s2"
		}, RuleLost, 17, "session s2 is not in the store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Check(tt.change(cleanHistory()), params)
			if len(res.Violations) != 1 {
				t.Fatalf("Check found %d violations, want 1 (%s at line %d): %v", len(res.Violations), tt.rule, tt.line, res.Violations)
			}
			v := res.Violations[0]
			if v.Rule != tt.rule || v.Line != tt.line || !strings.Contains(v.Text, tt.text) {
				t.Errorf("Check = %v, want rule %s at line %d saying %q", v, tt.rule, tt.line, tt.text)
			}
		})
	}
}

// The bounds are the documented ones, not stricter: a lease may run its
// full bound, a reuse inside the window is a concurrent tab.
func TestCheckBoundaries(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
	}{
		{"current just inside the lease bound", Event{T: sec(52.1) + int64(params.LeaseBound), P: "v3", Kind: KindState, Ready: true, PosAfter: 5}},
		{"stale bound not yet passed", Event{Start: sec(40), T: sec(40.01), P: "v2", Kind: KindVerify, Verdict: Accept, Tok: "b9", SID: "s8", Sub: "dan", SGen: 1}},
		{"reuse at the end of the grace window", Event{Start: sec(53.1) + int64(params.Grace), T: sec(63.2), P: "load", Kind: KindRefresh, OK: true, SID: "s2", RT: "q1", NewRT: "q2", Tok: "b2", SGen: 2}},
		{"accept sent before the confirmed answer", Event{Start: sec(4.19), T: sec(4.4), P: "gate1", Kind: KindVerify, Verdict: Accept, Tok: "a3", SID: "s1", Sub: "alice", SGen: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res := Check(append(cleanHistory(), tt.ev), params); len(res.Violations) != 0 {
				t.Errorf("Check(clean + %+v) = %v, want none", tt.ev, res.Violations)
			}
		})
	}
}

func TestWriteRead(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, e := range cleanHistory() {
		w.Add(e)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	got, err := Read(&buf)
	if err != nil {
		t.Fatalf("Read = %v", err)
	}
	want := cleanHistory()
	if len(got) != len(want) {
		t.Fatalf("Read returned %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i+1, got[i], want[i])
		}
	}
	if _, err := Read(strings.NewReader("{\"t\":1}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Read(bad line 2) = %v, want an error naming line 2", err)
	}
}
