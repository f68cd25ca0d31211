package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/tegata-dev/tegata/internal/bench"
)

// analysis explains a missed target: where the time (or memory) goes and
// what would close the gap. An entry is printed only when its target is
// missed in the run the document is generated from; every figure in it
// comes from that run, and the profile taken for the miss follows it.
var analysis = map[string]func(r *run) string{
	"revocation-lookup":    revocationLookup,
	"flood-gate-p99":       floodGateP99,
	"flood-heap":           floodHeap,
	"set-memory":           setMemory,
	"verify-new":           verifyNew,
	"flood-delivery":       floodDelivery,
	"authority-create-pg":  authorityCreatePostgres,
	"authority-refresh-pg": authorityRefreshPostgres,
	"confirm-p99":          confirmP99,
}

func revocationLookup(r *run) string {
	lookup, _ := r.micro.get("internal/revocation", "RevocationLookup", "ns/op")
	par, _ := r.micro.get("internal/revocation", "RevocationLookupParallel", "ns/op")
	floor, ok := r.micro.get("internal/bench", "RandomRead32MiB", "ns/op")
	var b strings.Builder
	b.WriteString("**Where the time goes.** ")
	if name, pct, ok := r.topOfProfile("revocation-lookup"); ok {
		fmt.Fprintf(&b, "The top of the profile below is `%s` with %s of the samples. ", name, pct)
	}
	if per, ok := r.micro.get("internal/revocation", "SetMemory", "B/entry"); ok {
		fmt.Fprintf(&b, "With 1,000,000 live entries the set takes about %.0f MiB (%s B per entry, `BenchmarkSetMemory`), far beyond this CPU's caches, ", per*1e6/(1<<20), bench.FormatValue(per))
	} else {
		b.WriteString("With 1,000,000 live entries the set's tables are far beyond this CPU's caches, ")
	}
	b.WriteString("and the benchmark looks up random ids, so nearly every lookup misses the cache (and often the TLB). ")
	if ok {
		fmt.Fprintf(&b, "On this machine one dependent random read in a 32 MiB array alone costs %s ns (`BenchmarkRandomRead32MiB`), which leaves about %s ns of the lookup's %s ns for decoding the id, hashing and the subject check. ",
			bench.FormatValue(floor), bench.FormatValue(max(0, lookup-floor)), bench.FormatValue(lookup))
	}
	if par > 0 {
		fmt.Fprintf(&b, "Lookups from both cores at once take %s ns of wall time each (`RevocationLookupParallel`): they scale across cores, so the cost is memory latency, not contention. ", bench.FormatValue(par))
	}
	fmt.Fprintf(&b, "Transparent huge pages on this machine: `%s`.\n\n", thp())
	b.WriteString("**What would close the gap.** No code on the path can avoid the one miss a random id costs, so the target is below this machine's memory latency plus the work of a lookup. ")
	b.WriteString("What would bring it under 100 ns here: fewer misses per lookup (a smaller footprint per entry so more of the table stays cached, or huge pages for the tables so a lookup does not also miss the TLB), ")
	b.WriteString("or a machine with lower memory latency. A verifier whose set is small (revocations are rare next to live tokens, and entries die with the tokens they cover) keeps the set in cache and is far under the target; this benchmark is the worst case of a million live entries.")
	return b.String()
}

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

func floodGateP99(r *run) string {
	window, _ := r.result("flood", "burst start → every gate has all")
	idle, _ := r.result("flood", "gate /auth idle p50")
	perEntry, _ := r.result("flood", "verifier catch-up CPU per entry (feed decode + apply)")
	entries, _ := r.result("flood", "verifier entries after the flood")
	u, _ := r.cpu("flood", "burst start → every gate has all")
	var b strings.Builder
	fmt.Fprintf(&b, "**Where the time goes.** From the start of the burst until every gate had it all (%s s), the CPU went as follows: %s. %s",
		bench.FormatValue(window), u, disturbed(u))
	fmt.Fprintf(&b, "Every gate decodes and applies every entry, and every authority node encodes every entry once per gate following it: %s deliveries in all. ",
		bench.FormatValue(entries*float64(gateCount(r))))
	if perEntry > 0 {
		fmt.Fprintf(&b, "The same work in a verifier running alone after the flood costs %s µs of CPU per entry (the profile below is of that process). ", bench.FormatValue(perEntry))
	}
	fmt.Fprintf(&b, "The check itself stays cheap (idle p50 %s ms): the p99 during the flood is a request waiting for a core while gates and nodes work through the backlog on a machine where all of them, Postgres and the load generator share %s cores.\n\n", bench.FormatValue(idle), cores())
	b.WriteString("**What would close the gap.** Less CPU per delivered entry on both ends (several entries per SSE event instead of one JSON object each, fewer allocations when decoding), ")
	b.WriteString("and letting request handling go before applying the feed in a gate (apply in bounded batches and yield between them). ")
	b.WriteString("Where gates do not share cores with authority nodes and Postgres, as in most deployments, much of this contention does not arise; this run puts everything on one 2-core machine.")
	return b.String()
}

func gateCount(r *run) int {
	var n int
	fmt.Sscan(r.param("flood", "gates (processes)"), &n)
	return n
}

func cores() string {
	return fmt.Sprint(numCPU())
}

func floodHeap(r *run) string {
	session, ok := r.micro.get("internal/revocation", "SetMemory", "B/entry")
	var b strings.Builder
	b.WriteString("**Where the memory goes.** The flood's entries are subject cutoffs, which the set keeps by subject string: each costs the string's bytes and its own record and table slot, where a session entry is a fixed 16-byte key. ")
	if ok {
		fmt.Fprintf(&b, "Session entries take %s B each in this run (`BenchmarkSetMemory`, 1,000,000 entries). ", bench.FormatValue(session))
	}
	b.WriteString("The heap profile below was taken while the verifier held the flood (in-use space by allocation site).\n\n")
	b.WriteString("**What would close the gap.** Key subject cutoffs by a fixed-size digest of the subject (16 bytes of a keyed hash, as sessions are keyed by 16 bytes) stored inline in the table instead of a string and a record per entry; ")
	b.WriteString("a collision could only make a token of another subject look cut off, never let a revoked one through, and at 128 bits it does not happen in practice.")
	return b.String()
}

func setMemory(r *run) string {
	return "**Where the memory goes.** See the revocation set's tables: each session entry is a table slot plus its expiry, and tables are sized in powers of two, so the cost per entry depends on where the entry count falls between two sizes."
}

func verifyNew(r *run) string {
	return "**Where the time goes.** The profile below: signature verification is the floor; what lies above it is parsing, claims checks and the revocation lookup."
}

func floodDelivery(r *run) string {
	write, _ := r.result("flood", "burst written in")
	after, _ := r.result("flood", "last write → every gate has all")
	return fmt.Sprintf("**Where the time goes.** Writing the burst took %s s of the total; the gates had everything %s s after the last write. The write path (one transaction per revocation, ordered by the log head) bounds how fast a burst can enter the log.",
		bench.FormatValue(write), bench.FormatValue(after))
}

func authorityCreatePostgres(r *run) string {
	return authorityPhase(r, "session creations", "a session row and its first refresh token in one transaction, plus signing an access token")
}

func authorityRefreshPostgres(r *run) string {
	return authorityPhase(r, "refreshes", "the refresh token's rotation in one transaction (the presented token is locked, marked used and its successor inserted), plus signing an access token")
}

// authorityPhase explains a missed authority target on Postgres from the
// phase's CPU use and latencies.
func authorityPhase(r *run, what, work string) string {
	rate, _ := r.result("authority", "postgres: "+what)
	p50, _ := r.result("authority", "postgres: "+what+" p50")
	workers := r.param("authority", "concurrent clients")
	u, ok := r.cpu("authority", "postgres "+what)
	var b strings.Builder
	fmt.Fprintf(&b, "**Where the time goes.** Each request is %s. ", work)
	if ok {
		fmt.Fprintf(&b, "During the phase the CPU went as follows: %s. %s", u, disturbed(u))
		self := u.Get("benchmark process (authority + load generator)")
		pg := u.Get("postgres")
		idle := u.Get(bench.CPUIdle)
		if idle > 0.2*u.Available() {
			fmt.Fprintf(&b, "The machine was %.0f%% idle, so the phase was not bound by CPU: with %s clients at %s requests/s a request takes %s ms on average (Little's law; p50 %s ms) mostly waiting on Postgres round trips and commits. ",
				100*idle/u.Available(), workers, bench.FormatValue(rate), bench.FormatValue(littleMs(workers, rate)), bench.FormatValue(p50))
		} else if disturbed(u) == "" {
			fmt.Fprintf(&b, "The CPU was saturated: this process (the authority and the load generator together) used %.2f core-s and Postgres %.2f of %.2f. ", self, pg, u.Available())
		}
		b.WriteString("The profile below is of this process in a second run on Postgres. ")
	}
	b.WriteString("\n\n**What would close the gap.** Fewer round trips per request to Postgres (one statement per request instead of several in a transaction, e.g. a CTE or a function), ")
	b.WriteString("batching commits across concurrent requests, less allocation and JSON work per request, and on this machine a load generator elsewhere: here it shares the 2 cores with the authority and Postgres.")
	return b.String()
}

// littleMs is the mean time in the system of workers closed-loop clients
// completing rate requests per second.
func littleMs(workers string, rate float64) float64 {
	var n float64
	fmt.Sscan(workers, &n)
	if rate <= 0 {
		return 0
	}
	return 1000 * n / rate
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

// confirmP99 explains a missed confirmed-revocation target: the call is the
// plain revoke call, then the slowest gate's delivery, then that gate's
// position report and its node's NOTIFY back.
func confirmP99(r *run) string {
	const pre = "confirmed revoke call (request → in force) "
	p50, _ := r.result("propagation", pre+"p50")
	p99, _ := r.result("propagation", pre+"p99")
	call, _ := r.result("propagation", "revoke call (request → 200) p99")
	every, _ := r.result("propagation", "ack → rejected at every gate p99")
	u, ok := r.cpu("propagation", "confirmed revocations")
	var b strings.Builder
	fmt.Fprintf(&b, "**Where the time goes.** A confirmed call (p50 %s ms, p99 %s ms) is the plain revoke call (p99 %s ms in this run), "+
		"then the time until the slowest of %s gates has the entry (the first phase measured p99 %s ms from the answer to a 401 at every gate), "+
		"then that gate's position report to its node and, for a gate of another node, the node's NOTIFY back to the one that answers. ",
		bench.FormatValue(p50), bench.FormatValue(p99), bench.FormatValue(call), r.param("propagation", "gates (processes)"), bench.FormatValue(every))
	if ok {
		fmt.Fprintf(&b, "During the phase the CPU went as follows: %s. %s", u, disturbed(u))
	}
	b.WriteString("Its p99 is the slowest of every gate at its slowest moment: on a machine where %s cores carry Postgres, the nodes, every gate and the load generator, ")
	b.WriteString("a gate waiting for a core delays the whole call.\n\n")
	b.WriteString("**What would close the gap.** Less scheduling delay for the gates (fewer processes per core, as in deployments where gates run beside their apps), ")
	b.WriteString("and a shorter chain: a gate reporting to every node it can reach instead of only the one it follows would spare the NOTIFY hop.")
	return strings.Replace(b.String(), "%s cores", cores()+" cores", 1)
}
