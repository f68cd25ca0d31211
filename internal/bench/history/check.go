package history

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Rules the checker enforces, each a promise of docs/semantics.md.
const (
	// RuleConfirmed: a token accepted, on a request sent after a
	// revocation covering it was answered "in force".
	RuleConfirmed = "accepted-after-confirmed"
	// RuleApplied: a token accepted by a verifier whose position, read
	// before the verdict, had passed the revocation covering it.
	RuleApplied = "accepted-after-applied"
	// RuleLease: a verifier reported current (Ready, or accepted a token)
	// while missing an entry acknowledged longer than Params.LeaseBound
	// before.
	RuleLease = "current-without-old-entry"
	// RuleUnreached: after the faults ended and the run settled, a
	// verifier had not reached an acknowledged revocation.
	RuleUnreached = "revocation-never-reached"
	// RuleRefresh: a refresh token accepted twice outside the grace
	// window, after its successor was used, with another successor than
	// the first (a forked chain), or in a session a refused reuse should
	// have revoked.
	RuleRefresh = "refresh-reuse"
	// RuleStale: a verifier cut off from every node for longer than its
	// staleness bound accepted a token or reported current.
	RuleStale = "accepted-while-stale"
	// RuleLost: an acknowledged revocation or session missing from the
	// store at the end.
	RuleLost = "lost-write"
)

// Params are the documented bounds the checker holds the run to.
type Params struct {
	// Grace is the refresh grace window (tegata serve --refresh-grace).
	Grace time.Duration
	// LeaseBound is how long after a revocation was acknowledged no
	// verifier may count itself current without it, whatever node it
	// follows: the node that answered has applied it; every other node
	// has within a second, or stops renewing its record and grants no
	// lease past that record's expiry (2 flush periods + the longest
	// staleness bound); a lease lasts at most the staleness bound. So
	// 2 × staleness bound + 2 s + the node clock margin (1 s), plus
	// any margin the harness adds for its own scheduling.
	LeaseBound time.Duration
}

// Violation is one broken promise, naming the event that broke it.
type Violation struct {
	Rule  string `json:"rule"`
	Line  int    `json:"line"`  // 1-based line of Event in the history
	Event Event  `json:"event"` // the offending event
	Cause int    `json:"cause"` // the line of the event it contradicts, or 0
	Text  string `json:"text"`
}

func (v Violation) String() string {
	s := fmt.Sprintf("%s: line %d (%s %s at %s): %s", v.Rule, v.Line, v.Event.P, v.Event.Kind, at(v.Event.T), v.Text)
	if v.Cause > 0 {
		s += fmt.Sprintf(" (see line %d)", v.Cause)
	}
	return s
}

func at(ns int64) string { return time.Duration(ns).Round(time.Millisecond).String() }

// Result is what Check found.
type Result struct {
	Violations []Violation `json:"violations"`
	// Checks counts, per rule, the events the rule was applied to.
	Checks map[string]int `json:"checks"`
	// Enforced is, per revocation and process that followed a token it
	// covers (Follow), the time from the revocation's answer to the
	// process's first refusal of it.
	Enforced []time.Duration `json:"-"`
	// Revocations counts acknowledged revocations by scope; Confirmed
	// those answered in force; Verdicts the verdicts by kind; Faults the
	// faults injected by kind.
	Revocations map[string]int `json:"revocations"`
	Confirmed   int            `json:"confirmed"`
	Verdicts    map[string]int `json:"verdicts"`
	Faults      map[string]int `json:"faults"`
}

// line is an event with its place in the history.
type line struct {
	n int
	e *Event
}

// checker holds the indexes Check builds over a history.
type checker struct {
	p   Params
	evs []Event
	res *Result

	revokes    []line            // acknowledged revocations
	bySID      map[string][]line // revocations by the session their entry names
	bySub      map[string][]line // ... by the subject
	byAck      []line            // revokes sorted by T
	maxSeqUpTo []int64           // byAck's highest Seq up to each index
	links      map[string][]line // link events by process
	starts     map[string][]line // start events by process
}

// Check reads a history and returns every violation it finds. It may fill
// in fields of evs that the log read at the end tells.
func Check(evs []Event, p Params) *Result {
	c := &checker{p: p, evs: evs, bySID: map[string][]line{}, bySub: map[string][]line{},
		links: map[string][]line{}, starts: map[string][]line{},
		res: &Result{Checks: map[string]int{}, Revocations: map[string]int{}, Verdicts: map[string]int{}, Faults: map[string]int{}}}
	c.index()
	for i := range evs {
		l := line{i + 1, &evs[i]}
		switch l.e.Kind {
		case KindVerify:
			c.res.Verdicts[l.e.Verdict]++
			c.verify(l)
		case KindState:
			c.state(l)
		case KindFinal:
			c.final(l)
		}
	}
	c.refreshes()
	c.lost()
	c.enforced()
	sort.SliceStable(c.res.Violations, func(i, j int) bool { return c.res.Violations[i].Line < c.res.Violations[j].Line })
	return c.res
}

func (c *checker) index() {
	c.generationsFromLog()
	for i := range c.evs {
		l := line{i + 1, &c.evs[i]}
		switch e := l.e; e.Kind {
		case KindRevoke:
			if !e.OK || e.Seq == 0 {
				continue
			}
			c.revokes = append(c.revokes, l)
			c.res.Revocations[e.Scope]++
			if e.InForce {
				c.res.Confirmed++
			}
			if e.SID != "" {
				c.bySID[e.SID] = append(c.bySID[e.SID], l)
			} else {
				c.bySub[e.Sub] = append(c.bySub[e.Sub], l)
			}
		case KindLink:
			c.links[e.P] = append(c.links[e.P], l)
		case KindStart:
			c.starts[e.P] = append(c.starts[e.P], l)
		case KindFault:
			if e.Detail != "healed" {
				c.res.Faults[e.Scope]++
			}
		}
	}
	c.byAck = slices.Clone(c.revokes)
	sort.SliceStable(c.byAck, func(i, j int) bool { return c.byAck[i].e.T < c.byAck[j].e.T })
	var m int64
	for _, l := range c.byAck {
		m = max(m, l.e.Seq)
		c.maxSeqUpTo = append(c.maxSeqUpTo, m)
	}
}

// generationsFromLog fills in the generation of subject revocations
// answered without one (a bulk call answers only seqs) from the log as
// read at the end.
func (c *checker) generationsFromLog() {
	sgen := map[int64]int64{}
	for _, e := range c.evs {
		if e.Kind == KindLogged && e.Sub != "" {
			sgen[e.Seq] = e.SGen
		}
	}
	for i := range c.evs {
		if e := &c.evs[i]; e.Kind == KindRevoke && e.Sub != "" && e.SGen == 0 {
			e.SGen = sgen[e.Seq]
		}
	}
}

func (c *checker) flag(rule string, l line, cause int, format string, args ...any) {
	c.res.Violations = append(c.res.Violations, Violation{Rule: rule, Line: l.n, Event: *l.e, Cause: cause, Text: fmt.Sprintf(format, args...)})
}

// covering returns the acknowledged revocations whose entry covers the
// token a verdict was given on: a session entry every token of its
// session, a subject entry the subject's tokens of a lower generation.
func (c *checker) covering(e *Event) []line {
	var out []line
	if e.SID != "" {
		out = append(out, c.bySID[e.SID]...)
	}
	for _, r := range c.bySub[e.Sub] {
		if e.Sub != "" && e.SGen < r.e.SGen {
			out = append(out, r)
		}
	}
	return out
}

func (c *checker) verify(l line) {
	e := l.e
	if e.Verdict != Accept {
		return
	}
	for _, r := range c.covering(e) {
		c.res.Checks[RuleConfirmed]++
		if r.e.InForce && e.Start > r.e.T {
			c.flag(RuleConfirmed, l, r.n, "token %s (session %s) accepted on a request sent %s after seq %d was answered in force",
				e.Tok, e.SID, at(e.Start-r.e.T), r.e.Seq)
		}
		if e.Final && e.Start > r.e.T {
			c.res.Checks[RuleUnreached]++
			c.flag(RuleUnreached, l, r.n, "token %s accepted after the run settled, though seq %d covering it was acknowledged %s before",
				e.Tok, r.e.Seq, at(e.Start-r.e.T))
		}
		if e.Pos > 0 {
			c.res.Checks[RuleApplied]++
			if e.Pos >= r.e.Seq {
				c.flag(RuleApplied, l, r.n, "token %s accepted at position %d, which includes seq %d covering it", e.Tok, e.Pos, r.e.Seq)
			}
		}
	}
	if e.PosAfter > 0 {
		c.lease(l, e.Start, e.PosAfter, "accepted a token")
	}
	c.stale(l, e.Start, "accepted token "+e.Tok)
}

func (c *checker) state(l line) {
	if !l.e.Ready {
		return
	}
	c.lease(l, l.e.T, l.e.PosAfter, "reported current")
	c.stale(l, l.e.T, "reported current")
}

// lease flags a verifier current at t at most at position pos while an
// entry acknowledged before t - LeaseBound has a higher seq.
func (c *checker) lease(l line, t, pos int64, what string) {
	c.res.Checks[RuleLease]++
	i := sort.Search(len(c.byAck), func(i int) bool { return c.byAck[i].e.T >= t-int64(c.p.LeaseBound) }) - 1
	if i < 0 || c.maxSeqUpTo[i] <= pos {
		return
	}
	for _, r := range c.byAck[:i+1] {
		if r.e.Seq > pos {
			c.flag(RuleLease, l, r.n, "%s at position %d, without seq %d acknowledged %s before", what, pos, r.e.Seq, at(t-r.e.T))
			return
		}
	}
}

// stale flags a verifier current at t although every link to the nodes
// had been isolated for longer than its staleness bound.
func (c *checker) stale(l line, t int64, what string) {
	since, ok := c.isolatedSince(l.e.P, t)
	if !ok {
		return
	}
	c.res.Checks[RuleStale]++
	bound := c.staleBound(l.e.P, t)
	if bound > 0 && t-since > bound {
		c.flag(RuleStale, l, 0, "%s %s after it was cut off from every node (staleness bound %s)", what, at(t-since), at(bound))
	}
}

// isolatedSince returns when p's links last became isolated, if they still
// were at t.
func (c *checker) isolatedSince(p string, t int64) (int64, bool) {
	var since int64
	isolated := false
	for _, l := range c.links[p] {
		if l.e.T > t {
			break
		}
		switch l.e.Detail {
		case "isolated":
			if !isolated {
				since, isolated = l.e.T, true
			}
		case "healed":
			isolated = false
		}
	}
	return since, isolated
}

// staleBound is the staleness bound of p's instance running at t.
func (c *checker) staleBound(p string, t int64) int64 {
	var ms int64
	for _, l := range c.starts[p] {
		if l.e.T > t {
			break
		}
		ms = l.e.StaleMS
	}
	return ms * int64(time.Millisecond)
}

func (c *checker) final(l line) {
	missing, first := 0, line{}
	for _, r := range c.revokes {
		c.res.Checks[RuleUnreached]++
		if r.e.Seq > l.e.Pos {
			if missing == 0 || r.e.Seq < first.e.Seq {
				first = r
			}
			missing++
		}
	}
	if missing > 0 {
		c.flag(RuleUnreached, l, first.n, "settled at position %d, missing %d acknowledged revocation(s), the first seq %d", l.e.Pos, missing, first.e.Seq)
	}
}
