package main

import (
	"fmt"
	"io"

	"github.com/tegata-dev/tegata/internal/bench"
)

// microTarget is a goal checked against the micro benchmarks' medians.
type microTarget struct {
	id, name string
	// measure computes the target; ok is false when a benchmark it needs
	// did not run (Redis absent, a package not compiling).
	measure func(m micro) (t bench.Target, ok bool)
	// profile is the benchmark to profile when the target is missed.
	profile *recipe
}

// recipe names a benchmark to run under -cpuprofile.
type recipe struct{ pkg, bench string }

var microTargets = []microTarget{
	{
		id: "verify-new", name: "VerifyNew within 1.1× of bare Ed25519Verify",
		measure: func(m micro) (bench.Target, bool) {
			v, ok1 := m.get("verifier", "VerifyNew", "ns/op")
			e, ok2 := m.get("token", "Ed25519Verify", "ns/op")
			return ratioTarget("verify-new", "VerifyNew within 1.1× of bare Ed25519Verify", v, e, "<=", 1.1), ok1 && ok2
		},
		profile: &recipe{"./verifier", "BenchmarkVerifyNew"},
	},
	{
		id: "verify-cached", name: "VerifyCached at most 100 ns",
		measure: func(m micro) (bench.Target, bool) {
			v, ok := m.get("verifier", "VerifyCached", "ns/op")
			return bench.NewTarget("verify-cached", "VerifyCached at most 100 ns", v, "<=", 100, " ns", ""), ok
		},
		profile: &recipe{"./verifier", "BenchmarkVerifyCached"},
	},
	{
		id: "verify-cached-allocs", name: "VerifyCached allocates nothing",
		measure: func(m micro) (bench.Target, bool) {
			v, ok := m.get("verifier", "VerifyCached", "allocs/op")
			return bench.NewTarget("verify-cached-allocs", "VerifyCached allocates nothing", v, "<=", 0, " allocs/op", ""), ok
		},
	},
	{
		id: "verify-dpop", name: "VerifyDPoP (cached token, fresh Ed25519 proof) within 1.2× of bare Ed25519Verify",
		measure: func(m micro) (bench.Target, bool) {
			v, ok1 := m.get("verifier", "VerifyDPoP", "ns/op")
			e, ok2 := m.get("token", "Ed25519Verify", "ns/op")
			return ratioTarget("verify-dpop", "VerifyDPoP (cached token, fresh Ed25519 proof) within 1.2× of bare Ed25519Verify", v, e, "<=", 1.2), ok1 && ok2
		},
		profile: &recipe{"./verifier", "BenchmarkVerifyDPoP"},
	},
	{
		id: "verify-dpop-es256", name: "VerifyDPoPES256 (cached token, fresh ES256 proof) within 1.2× of bare ES256Verify",
		measure: func(m micro) (bench.Target, bool) {
			v, ok1 := m.get("verifier", "VerifyDPoPES256", "ns/op")
			e, ok2 := m.get("token", "ES256Verify", "ns/op")
			return ratioTarget("verify-dpop-es256", "VerifyDPoPES256 (cached token, fresh ES256 proof) within 1.2× of bare ES256Verify", v, e, "<=", 1.2), ok1 && ok2
		},
		profile: &recipe{"./verifier", "BenchmarkVerifyDPoPES256"},
	},
	{
		id: "revocation-lookup", name: "RevocationLookup under 100 ns (1,000,000 live entries)",
		measure: func(m micro) (bench.Target, bool) {
			v, ok := m.get("internal/revocation", "RevocationLookup", "ns/op")
			return bench.NewTarget("revocation-lookup", "RevocationLookup under 100 ns (1,000,000 live entries)", v, "<", 100, " ns", ""), ok
		},
		profile: &recipe{"./internal/revocation", "BenchmarkRevocationLookup"},
	},
	{
		id: "cached-vs-redis", name: "cached verification at least 50× faster than a Redis GET",
		measure: func(m micro) (bench.Target, bool) {
			c, ok1 := m.get("verifier", "VerifyCached", "ns/op")
			r, ok2 := m.get("internal/bench", "RedisLookup", "ns/op")
			return ratioTarget("cached-vs-redis", "cached verification at least 50× faster than a Redis GET", r, c, ">=", 50), ok1 && ok2
		},
		profile: &recipe{"./verifier", "BenchmarkVerifyCached"},
	},
	{
		id: "set-memory", name: "heap per live entry (session entries, 1,000,000, BenchmarkSetMemory)",
		measure: func(m micro) (bench.Target, bool) {
			v, ok := m.get("internal/revocation", "SetMemory", "B/entry")
			return bench.NewTarget("set-memory", "heap per live entry (session entries, 1,000,000, BenchmarkSetMemory)", v, "<=", 64, " B", ""), ok
		},
	},
}

// ratioTarget compares a/b with limit and shows both figures.
func ratioTarget(id, name string, a, b float64, op string, limit float64) bench.Target {
	ratio := 0.0
	if b > 0 {
		ratio = a / b
	}
	return bench.NewTarget(id, name, ratio, op, limit, "×", fmt.Sprintf("%s vs %s ns (%.2f×)", bench.FormatValue(a), bench.FormatValue(b), ratio))
}

func (t microTarget) eval(m micro) row {
	tg, ok := t.measure(m)
	tg.ID, tg.Name = t.id, t.name
	if !ok {
		tg.Measured, tg.Pass = "not measured", false
	}
	return row{Target: tg, source: "go test -bench", measured: ok}
}

// systemRecipes are the profiles taken for missed system targets, of the
// benchmark's own process: the in-process authority on one store
// (authority-postgres, authority-sqlite: scripts/bench.sh runs
// `tegata-bench authority --stores STORE`), the in-process verifier
// catching up on the flood (flood). kind is cpu or heap.
var systemRecipes = map[string]struct{ bench, kind string }{
	"authority-create-pg":  {"authority-postgres", "cpu"},
	"authority-refresh-pg": {"authority-postgres", "cpu"},
	"authority-revoke-pg":  {"authority-postgres", "cpu"},
	"authority-create-sl":  {"authority-sqlite", "cpu"},
	"authority-refresh-sl": {"authority-sqlite", "cpu"},
	"flood-gate-p99":       {"flood", "cpu"},
	"flood-delivery":       {"flood", "cpu"},
	"flood-heap":           {"flood", "heap"},
}

// plan prints one line per profile to take: "micro ID PKG BENCH" or
// "system ID BENCHMARK KIND".
func (r *run) plan(w io.Writer) {
	recipes := map[string]*recipe{}
	for _, t := range microTargets {
		recipes[t.id] = t.profile
	}
	for _, t := range r.targets() {
		if t.Pass || !t.measured {
			continue
		}
		if rc := recipes[t.ID]; rc != nil {
			fmt.Fprintf(w, "micro %s %s %s\n", t.ID, rc.pkg, rc.bench)
		}
		if rc, ok := systemRecipes[t.ID]; ok {
			fmt.Fprintf(w, "system %s %s %s\n", t.ID, rc.bench, rc.kind)
		}
	}
}
