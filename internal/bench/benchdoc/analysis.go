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
	"authority-create-pg":  authorityPostgres,
	"authority-refresh-pg": authorityPostgres,
}

func revocationLookup(r *run) string {
	lookup, _ := r.micro.get("revocation", "RevocationLookup", "ns/op")
	par, _ := r.micro.get("revocation", "RevocationLookupParallel", "ns/op")
	floor, ok := r.micro.get("internal/bench", "RandomRead32MiB", "ns/op")
	var b strings.Builder
	b.WriteString("**Where the time goes.** The profile below puts most samples in the probe of the session table, that is the load of the slot a random session id hashes to. ")
	b.WriteString("With 1,000,000 live entries the set's tables take tens of MiB, far beyond this CPU's caches, and the benchmark looks up random ids, so nearly every lookup misses the cache (and often the TLB). ")
	if ok {
		fmt.Fprintf(&b, "On this machine one dependent random read in a 32 MiB array alone costs %s ns (`BenchmarkRandomRead32MiB`), which leaves about %s ns of the lookup's %s ns for decoding the id, hashing and the subject check. ",
			bench.FormatValue(floor), bench.FormatValue(max(0, lookup-floor)), bench.FormatValue(lookup))
	}
	if par > 0 {
		fmt.Fprintf(&b, "Lookups from both cores at once take %s ns of wall time each (`RevocationLookupParallel`): readers take no lock, so they scale; the cost is memory latency, not contention. ", bench.FormatValue(par))
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

func floodGateP99(r *run) string {
	window, _ := r.result("flood", "burst start → every gate has all")
	idle, _ := r.result("flood", "gate /auth idle p50")
	perEntry, _ := r.result("flood", "verifier catch-up CPU per entry (feed decode + apply)")
	entries, _ := r.result("flood", "verifier entries after the flood")
	var b strings.Builder
	fmt.Fprintf(&b, "**Where the time goes.** From the start of the burst until every gate had it all (%s s), the CPU went as follows: %s. ",
		bench.FormatValue(window), r.param("flood", "CPU from burst start to delivery"))
	fmt.Fprintf(&b, "Every gate decodes and applies every entry, and every authority node encodes every entry once per gate following it: %s deliveries in all. ",
		bench.FormatValue(entries*float64(gateCount(r))))
	if perEntry > 0 {
		fmt.Fprintf(&b, "The same work in a verifier running alone after the flood costs %s µs of CPU per entry (the profile below is of that process; most of it is the feed's decoding and the set's inserts). ", bench.FormatValue(perEntry))
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
	session, ok := r.micro.get("revocation", "SetMemory", "B/entry")
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

func authorityPostgres(r *run) string {
	var b strings.Builder
	b.WriteString("**Where the time goes.** The CPU of each phase (below, from the benchmark's notes) is split between this process, which holds both the authority and the 32 clients, and Postgres; the profile below is of this process in a second run on Postgres. ")
	if rep := r.reports["authority"]; rep != nil {
		for _, n := range rep.Notes {
			if strings.HasPrefix(n, "postgres") {
				b.WriteString("\n- " + n)
			}
		}
	}
	b.WriteString("\n\n**What would close the gap.** Whatever the profile shows on top: fewer round trips per request to Postgres (each session creation and refresh is one transaction), less JSON and signing work per request, and a load generator on another machine.")
	return b.String()
}
