package main

import (
	_ "embed"
	"fmt"
	"os"
	"strings"

	"github.com/tegata-dev/tegata/internal/bench"
)

// figures lists, for a missed target, the figures of the run that bear on
// it: generated, every one from the run the document is made from. The
// explanation that follows them in the document is written by hand in
// analysis.md (see explanations), apart from any figure.
var figures = map[string]func(r *run) []string{
	"revocation-lookup":    revocationLookup,
	"flood-gate-p99":       floodGateP99,
	"flood-heap":           floodHeap,
	"verify-cached":        verifyCached,
	"flood-delivery":       floodDelivery,
	"authority-create-pg":  func(r *run) []string { return authorityPhase(r, "postgres", "session creations", AuthorityTarget) },
	"authority-refresh-pg": func(r *run) []string { return authorityPhase(r, "postgres", "refreshes", AuthorityTarget) },
	"authority-revoke-pg": func(r *run) []string {
		return authorityPhase(r, "postgres", "session revocations", AuthorityRevokeTarget)
	},
	"authority-create-sl":  func(r *run) []string { return authorityPhase(r, "sqlite", "session creations", AuthorityTarget) },
	"authority-refresh-sl": func(r *run) []string { return authorityPhase(r, "sqlite", "refreshes", AuthorityTarget) },
	"confirm-p99":          confirmP99,
	"propagation-p99":      propagationP99,
}

//go:embed analysis.md
var analysisText string

// explanations are the sections of analysis.md by target id.
var explanations = parseExplanations(analysisText)

// parseExplanations splits analysis.md into its sections: a line "## id
// id ..." begins the section of those ids; what comes before the first is
// the file's own preface.
func parseExplanations(text string) map[string]string {
	out := map[string]string{}
	var ids []string
	var body strings.Builder
	flush := func() {
		for _, id := range ids {
			out[id] = strings.TrimSpace(body.String())
		}
		body.Reset()
	}
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, "## "); ok {
			flush()
			ids = strings.Fields(rest)
			continue
		}
		if ids != nil {
			body.WriteString(line)
		}
	}
	flush()
	return out
}

// The authority targets, from package bench.
const (
	AuthorityTarget       = bench.AuthorityTarget
	AuthorityRevokeTarget = bench.AuthorityRevokeTarget
)

// thp reads the transparent huge page mode, which decides whether the Go
// heap's large tables are backed by 2 MiB pages.
func thp() string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// result returns a system benchmark's result by name.
func (r *run) result(benchmark, name string) (float64, bool) {
	rep := r.reports[benchmark]
	if rep == nil {
		return 0, false
	}
	for _, res := range rep.Results {
		if res.Name == name {
			return res.Value, true
		}
	}
	return 0, false
}

// param returns a system benchmark's setting by name.
func (r *run) param(benchmark, name string) string {
	rep := r.reports[benchmark]
	if rep == nil {
		return ""
	}
	for _, p := range rep.Params {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// cpu returns a system benchmark's CPU use in the named phase.
func (r *run) cpu(benchmark, phase string) (bench.CPUUse, bool) {
	if rep := r.reports[benchmark]; rep != nil {
		for _, u := range rep.CPU {
			if u.Phase == phase {
				return u, true
			}
		}
	}
	return bench.CPUUse{}, false
}

// isDisturbed reports whether processes outside the benchmark took more
// than a tenth of the machine during a phase.
func isDisturbed(u bench.CPUUse) bool {
	return u.Available() > 0 && u.Get(bench.CPUOther) > 0.1*u.Available()
}

// disturbed says so when processes outside the benchmark took a notable
// share of the machine during a phase.
func disturbed(u bench.CPUUse) string {
	if !isDisturbed(u) {
		return ""
	}
	other := u.Get(bench.CPUOther)
	return fmt.Sprintf("Processes outside the benchmark took %.2f of the %.2f core-seconds of this phase (%.0f%%): the run was disturbed, and the figure is worse than on a quiet machine. ",
		other, u.Available(), 100*other/u.Available())
}

func gateCount(r *run) int {
	var n int
	fmt.Sscan(r.param("flood", "gates (processes)"), &n)
	return n
}

func cores() string {
	return fmt.Sprint(numCPU())
}

// topOfProfile returns the function with the most flat samples in the
// pprof -top output taken for a target, and its share.
func (r *run) topOfProfile(id string) (name, share string, ok bool) {
	text := r.text("profile-" + id + ".txt")
	_, rows, found := strings.Cut(text, "flat%")
	if !found {
		return "", "", false
	}
	for _, line := range strings.Split(rows, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 6 {
			return strings.Join(f[5:], " "), f[1], true
		}
	}
	return "", "", false
}

// list collects the figures of a missed target, one line each.
type list []string

func (l *list) add(format string, args ...any) { *l = append(*l, fmt.Sprintf(format, args...)) }

// cpuUse adds a phase's CPU use and, when processes outside the benchmark
// took a notable share of it, says that the run was disturbed.
func (l *list) cpuUse(r *run, benchmark, phase string) {
	if u, ok := r.cpu(benchmark, phase); ok {
		l.add("CPU during %q: %s", phase, u)
		if d := disturbed(u); d != "" {
			l.add("%s", strings.TrimSpace(d))
		}
	}
}

// result adds a system benchmark's result, if the run has it.
func (l *list) result(r *run, benchmark, name, unit string) {
	if v, ok := r.result(benchmark, name); ok {
		l.add("%s: %s%s", name, bench.FormatValue(v), unit)
	}
}

// micro adds a micro benchmark's median, if the run has it.
func (l *list) micro(r *run, pkg, name, unit string) {
	if v, ok := r.micro.get(pkg, name, unit); ok {
		l.add("`%s`: %s %s", name, bench.FormatValue(v), unit)
	}
}

func revocationLookup(r *run) []string {
	var l list
	if name, pct, ok := r.topOfProfile("revocation-lookup"); ok {
		l.add("top of the profile below: `%s`, %s of the samples", name, pct)
	}
	if per, ok := r.micro.get("internal/revocation", "SetMemory", "B/entry"); ok {
		l.add("the set with 1,000,000 live entries: about %.0f MiB (%s B per entry, `BenchmarkSetMemory`)", per*1e6/(1<<20), bench.FormatValue(per))
	}
	lookup, _ := r.micro.get("internal/revocation", "RevocationLookup", "ns/op")
	if floor, ok := r.micro.get("internal/bench", "RandomRead32MiB", "ns/op"); ok {
		l.add("one dependent random read in a 32 MiB array (`RandomRead32MiB`): %s ns, leaving %s ns of the lookup's %s ns",
			bench.FormatValue(floor), bench.FormatValue(max(0, lookup-floor)), bench.FormatValue(lookup))
	}
	l.micro(r, "internal/revocation", "RevocationLookupParallel", "ns/op")
	l.add("transparent huge pages: `%s`", thp())
	return l
}

func floodGateP99(r *run) []string {
	var l list
	l.result(r, "flood", "burst start → every gate has all", " s")
	l.cpuUse(r, "flood", "burst start → every gate has all")
	for _, who := range []string{"postgres", "authority nodes", "each gate"} {
		l.result(r, "flood", "burst CPU per entry: "+who, " µs")
	}
	if entries, ok := r.result("flood", "verifier entries after the flood"); ok {
		l.add("deliveries to the gates: %s (%s entries × %d gates)", bench.FormatValue(entries*float64(gateCount(r))), bench.FormatValue(entries), gateCount(r))
	}
	l.result(r, "flood", "verifier catch-up CPU per entry (feed decode + apply)", " µs")
	l.result(r, "flood", "gate /auth idle p50", " ms")
	for _, name := range []string{"gates: wait for a CPU per run", "prober: wait for a CPU per run", "gates: threads ready but not running"} {
		idle, ok1 := r.result("flood", name+", idle")
		during, ok2 := r.result("flood", name+", during flood")
		if ok1 && ok2 {
			l.add("%s: %s during the flood, %s idle", name, bench.FormatValue(during), bench.FormatValue(idle))
		}
	}
	l.add("cores shared by Postgres, the nodes, the gates and the load generator: %s", cores())
	return l
}

func floodHeap(r *run) []string {
	var l list
	l.micro(r, "internal/revocation", "SetMemory", "B/entry")
	return l
}

func propagationP99(r *run) []string {
	var l list
	l.result(r, "propagation", "ack → rejected at every gate p50", " ms")
	l.result(r, "propagation", "ack → rejected at every gate p99", " ms")
	l.result(r, "propagation", "ack → rejected at one gate p99", " ms")
	l.cpuUse(r, "propagation", "revocations")
	return l
}

func verifyCached(r *run) []string {
	var l list
	l.micro(r, "verifier", "VerifyCached", "ns/op")
	l.micro(r, "internal/revocation", "RevocationLookup", "ns/op")
	return l
}

func floodDelivery(r *run) []string {
	var l list
	l.add("written via: %s", r.param("flood", "written via"))
	l.result(r, "flood", "burst written in", " s")
	l.result(r, "flood", "last write → every gate has all", " s")
	l.cpuUse(r, "flood", "burst start → every gate has all")
	u, ok := r.cpu("flood", "burst start → every gate has all")
	if entries, _ := r.result("flood", "verifier entries after the flood"); ok && entries > 0 {
		l.add("CPU per entry of the burst: %s µs of Postgres, %s µs of the authority nodes",
			bench.FormatValue(u.Get("postgres")/entries*1e6), bench.FormatValue(u.Get("authority nodes")/entries*1e6))
	}
	return l
}

// authorityPhase lists a phase's cost per call on one store, set against
// what the machine's cores allow at the target rate.
func authorityPhase(r *run, store, what string, target float64) []string {
	var l list
	rate, _ := r.result("authority", store+": "+what)
	l.add("rate: %s calls/s, target %s", bench.FormatValue(rate), bench.FormatValue(target))
	l.cpuUse(r, "authority", store+" "+what)
	u, ok := r.cpu("authority", store+" "+what)
	self, okSelf := r.result("authority", store+": "+what+", CPU per call of this process (authority + load generator)")
	pg, _ := r.result("authority", store+": "+what+", CPU per call of Postgres")
	if okSelf {
		total := self + pg
		if ok && rate > 0 {
			total += u.Get(bench.CPUInterrupts) / (rate * u.Wall) * 1e6
		}
		l.add("CPU per call: %s µs in this process (authority + load generator), %s µs in Postgres, about %s µs in all with the network stack",
			bench.FormatValue(self), bench.FormatValue(pg), bench.FormatValue(total))
		l.add("budget per call at the target on %d cores: %s µs; ceiling at the measured cost: %s calls/s",
			numCPU(), bench.FormatValue(float64(numCPU())*1e6/target), bench.FormatValue(float64(numCPU())*1e6/total))
	}
	if ok && u.Available() > 0 {
		l.add("cores idle for %.0f%% of the phase", 100*u.Get(bench.CPUIdle)/u.Available())
	}
	if c := r.param("authority", "concurrent clients"); c != "" {
		l.add("concurrent clients: %s", c)
	}
	l.result(r, "authority", store+": "+what+", writes per transaction (group commit)", "")
	return l
}

func confirmP99(r *run) []string {
	var l list
	const pre = "confirmed revoke call (request → in force) "
	l.result(r, "propagation", pre+"p50", " ms")
	l.result(r, "propagation", pre+"p99", " ms")
	l.result(r, "propagation", "plain revoke call of the same phase (request → 200) p99", " ms")
	l.result(r, "propagation", "ack → rejected at every gate p99", " ms")
	l.add("gates: %s, on %s cores", r.param("propagation", "gates (processes)"), cores())
	l.cpuUse(r, "propagation", "confirmed revocations")
	return l
}
