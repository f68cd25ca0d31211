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
	"verify-cached":        verifyCached,
	"flood-delivery":       floodDelivery,
	"authority-create-pg":  func(r *run) string { return authorityPhase(r, "postgres", "session creations", AuthorityTarget) },
	"authority-refresh-pg": func(r *run) string { return authorityPhase(r, "postgres", "refreshes", AuthorityTarget) },
	"authority-revoke-pg": func(r *run) string {
		return authorityPhase(r, "postgres", "session revocations", AuthorityRevokeTarget)
	},
	"authority-create-sl":  func(r *run) string { return authorityPhase(r, "sqlite", "session creations", AuthorityTarget) },
	"authority-refresh-sl": func(r *run) string { return authorityPhase(r, "sqlite", "refreshes", AuthorityTarget) },
	"confirm-p99":          confirmP99,
	"propagation-p99":      propagationP99,
}

// The authority targets, from package bench.
const (
	AuthorityTarget       = bench.AuthorityTarget
	AuthorityRevokeTarget = bench.AuthorityRevokeTarget
)

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
	pg, ok1 := r.result("flood", "burst CPU per entry: postgres")
	nodes, ok2 := r.result("flood", "burst CPU per entry: authority nodes")
	gate, ok3 := r.result("flood", "burst CPU per entry: each gate")
	if ok1 && ok2 && ok3 {
		fmt.Fprintf(&b, "Per entry of the burst that is %s µs of CPU in Postgres, %s µs in the authority nodes and %s µs in each gate. ",
			bench.FormatValue(pg), bench.FormatValue(nodes), bench.FormatValue(gate))
	}
	fmt.Fprintf(&b, "Each authority node reads every entry from the log once for its feed and encodes it once, whatever the number of gates (the hub keeps the last 32,768 entries encoded; each stream copies the bytes), and once more for its own revocation set (introspection); every gate decodes and applies every entry: %s deliveries in all. ",
		bench.FormatValue(entries*float64(gateCount(r))))
	if perEntry > 0 {
		fmt.Fprintf(&b, "A gate's share is small: the same work in a verifier running alone after the flood costs %s µs of CPU per entry (the profile below is of that process), applied in events of at most 256 entries that no lookup waits for, the thread yielded after each event whenever a request waits for one. ", bench.FormatValue(perEntry))
	}
	fmt.Fprintf(&b, "The check itself stays cheap (idle p50 %s ms). ", bench.FormatValue(idle))
	b.WriteString(floodRunQueue(r))
	b.WriteString("\n\n**What would close the gap.** Less CPU per entry on the write path, which takes most of the burst's CPU (Postgres and the authority nodes), so that the burst no longer fills every core; or cores of their own for the gates. ")
	fmt.Fprintf(&b, "The target is judged on this run, where the gates share %s cores with Postgres, the authority nodes and the load generator: that is the figure in the table. In most deployments gates run beside the applications they protect, not beside Postgres and the authority, and do not wait for the burst's cores.", cores())
	return b.String()
}

// floodRunQueue says, from the flood's run-queue figures, how long the
// probes' path waited for a CPU, idle and during the flood.
func floodRunQueue(r *run) string {
	gi, ok1 := r.result("flood", "gates: wait for a CPU per run, idle")
	gf, ok2 := r.result("flood", "gates: wait for a CPU per run, during flood")
	ri, _ := r.result("flood", "gates: threads ready but not running, idle")
	rf, _ := r.result("flood", "gates: threads ready but not running, during flood")
	pi, _ := r.result("flood", "prober: wait for a CPU per run, idle")
	pf, _ := r.result("flood", "prober: wait for a CPU per run, during flood")
	if !ok1 || !ok2 {
		return "The p99 during the flood is a request waiting for a core on a machine the burst saturates."
	}
	return fmt.Sprintf("The p99 during the flood is a request waiting for a core: a probe waits at least twice (the gate's thread woken by the request, the prober's by the answer), "+
		"and each time a gate's thread was put on a CPU during the flood it had waited %s µs on average (%s µs idle), the prober's %s µs (%s µs idle); "+
		"on average %s of the gates' threads stood ready without a CPU (%s idle). The kernel shares the cores fairly, so a woken gate thread often waits for a busy one's slice to end; "+
		"a few such waits make the milliseconds of the p99.",
		bench.FormatValue(gf), bench.FormatValue(gi), bench.FormatValue(pf), bench.FormatValue(pi), bench.FormatValue(rf), bench.FormatValue(ri))
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
	return "**Where the time goes.** The profile below: signature verification (Ed25519, with its SHA-512 of the signing input) is the floor `Ed25519Verify` measures; what lies above it is splitting and decoding the token, parsing the claims, the revocation lookup and the entry a verified token leaves in the cache. The benchmark verifies 1,024 distinct tokens in turn, so each call also reads a token that is no longer in the CPU's caches, which `Ed25519Verify`, one input over and over, does not."
}

func propagationP99(r *run) string {
	p50, _ := r.result("propagation", "ack → rejected at every gate p50")
	one, _ := r.result("propagation", "ack → rejected at one gate p99")
	u, ok := r.cpu("propagation", "revocations")
	var b strings.Builder
	fmt.Fprintf(&b, "**Where the time goes.** A revocation travels: commit and NOTIFY, each node's hub woken to read the log, the entry streamed to the gates following it, applied there; the median is %s ms. The p99 at a single gate is already %s ms, so the tail is not one slow gate but every path waiting, now and then, for a core. ",
		bench.FormatValue(p50), bench.FormatValue(one))
	if ok {
		fmt.Fprintf(&b, "The CPU during the phase: %s. %s", u, disturbed(u))
	}
	b.WriteString("\n\n**What would close the gap.** A quiet machine: the work per revocation is small (one batched commit, one read per node, one line per gate), and the tail is scheduling delay among the processes that share the cores.")
	return b.String()
}

func verifyCached(r *run) string {
	cached, _ := r.micro.get("verifier", "VerifyCached", "ns/op")
	lookup, ok := r.micro.get("internal/revocation", "RevocationLookup", "ns/op")
	var b strings.Builder
	b.WriteString("**Where the time goes.** A cache hit compares the token with the one cached (it is found by its last bytes, then compared whole), checks that the key that verified it is still published (by identity while the key set is unchanged), tests the clock against the token's precomputed validity window, looks the token's session and subject up in the revocation set (keys prepared when the token was first verified), and reads whether the feed is current. ")
	if ok {
		fmt.Fprintf(&b, "The revocation lookups grow with the set: here it holds 10,000 entries and a hit takes %s ns in all; against a million, one lookup alone takes %s ns (`RevocationLookup`), mostly waiting on memory. ", bench.FormatValue(cached), bench.FormatValue(lookup))
	}
	b.WriteString("The profile below shows where the time of a hit goes.")
	return b.String()
}

func floodDelivery(r *run) string {
	write, _ := r.result("flood", "burst written in")
	after, _ := r.result("flood", "last write → every gate has all")
	entries, _ := r.result("flood", "verifier entries after the flood")
	u, ok := r.cpu("flood", "burst start → every gate has all")
	var b strings.Builder
	fmt.Fprintf(&b, "**Where the time goes.** Writing the burst through the bulk API (%s) took %s s; the gates had everything %s s after the last write. ",
		r.param("flood", "written via"), bench.FormatValue(write), bench.FormatValue(after))
	if ok && entries > 0 {
		fmt.Fprintf(&b, "Meanwhile the CPU went as follows: %s. %s", u, disturbed(u))
		fmt.Fprintf(&b, "Per entry of the burst that is %s µs of Postgres and %s µs of the authority nodes (decoding the requests, checking every item, one bulk write per call, reading the entries back and streaming them to every gate). ",
			bench.FormatValue(u.Get("postgres")/entries*1e6), bench.FormatValue(u.Get("authority nodes")/entries*1e6))
	}
	b.WriteString("\n\n**What would close the gap.** The write is bound by CPU: Postgres's per row work (the subject's generation, the log row and its indexes, the audit row) and the authority's per item work, on the cores the gates and the load generator also use. More cores, or Postgres on a machine of its own, shorten it directly.")
	return b.String()
}

// authorityPhase explains a missed authority target on one store from the
// phase's CPU cost per call, set against what the machine's cores allow.
func authorityPhase(r *run, store, what string, target float64) string {
	rate, _ := r.result("authority", store+": "+what)
	self, okSelf := r.result("authority", store+": "+what+", CPU per call of this process (authority + load generator)")
	pg, _ := r.result("authority", store+": "+what+", CPU per call of Postgres")
	perBatch, okBatch := r.result("authority", store+": "+what+", writes per transaction (group commit)")
	u, ok := r.cpu("authority", store+" "+what)
	var b strings.Builder
	b.WriteString("**Where the time goes.** ")
	if ok {
		fmt.Fprintf(&b, "During the phase the CPU went as follows: %s. %s", u, disturbed(u))
	}
	if okSelf {
		total := self + pg
		if ok && rate > 0 {
			total += u.Get(bench.CPUInterrupts) / (rate * u.Wall) * 1e6
		}
		fmt.Fprintf(&b, "A call cost %s µs of CPU in this process, which holds both the authority and the load generator", bench.FormatValue(self))
		if pg > 0 {
			fmt.Fprintf(&b, ", and %s µs in Postgres", bench.FormatValue(pg))
		}
		budget := float64(numCPU()) * 1e6 / target
		ceiling := float64(numCPU()) * 1e6 / total
		fmt.Fprintf(&b, ": about %s µs in all with the network stack, where %d cores serving %s calls/s leave %s µs per call. At this cost the machine tops out near %s calls/s. ",
			bench.FormatValue(total), numCPU(), bench.FormatValue(target), bench.FormatValue(budget), bench.FormatValue(ceiling))
		if ok && rate > 0 && ceiling > 1.15*rate && u.Get(bench.CPUIdle) > 0.15*u.Available() {
			clients := r.param("authority", "concurrent clients")
			fmt.Fprintf(&b, "Yet the cores were idle for %.0f%% of the phase: the rate is held by how long a batch takes, not by CPU. A lane commits one batch at a time, so the %s clients split into two halves, one in the batch being committed while the other forms the next, and every call waits for about two batches, each a chain of round trips between the authority and Postgres (BEGIN, locking the rows, reads, the writes riding on them, the log append, COMMIT) during which the cores have little else to do. ",
				100*u.Get(bench.CPUIdle)/u.Available(), clients)
		}
	}
	if okBatch {
		fmt.Fprintf(&b, "Writes are committed together (%s per transaction on average), so the store's statements and commits are a small share; the rest is per request: HTTP and JSON on both ends, the API key check, ", bench.FormatValue(perBatch))
		if what != "session revocations" {
			b.WriteString("signing an access token (Ed25519), ")
		}
		b.WriteString("and the load generator's own work. ")
	}
	b.WriteString("The profile below is of this process in a second run on the same store.\n\n")
	b.WriteString("**What would close the gap.** Less CPU per call, or more of it: the load generator on another machine (here it shares the cores with the authority and the database), more cores, or several authority nodes each on its own machine, which share one Postgres as they are designed to. ")
	if what == "session revocations" {
		b.WriteString("Where idle time is left, more concurrent clients fill larger batches at the same cost per batch; overlapping two batches of a lane was tried and filled the idle time with smaller batches, at about a third more Postgres CPU per revocation.")
	}
	return b.String()
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
	call, _ := r.result("propagation", "plain revoke call of the same phase (request → 200) p99")
	every, _ := r.result("propagation", "ack → rejected at every gate p99")
	u, ok := r.cpu("propagation", "confirmed revocations")
	var b strings.Builder
	fmt.Fprintf(&b, "**Where the time goes.** A confirmed call (p50 %s ms, p99 %s ms) is the plain revoke call (p99 %s ms in the same phase), "+
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
