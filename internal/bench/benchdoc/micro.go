package main

import (
	"io"
	"math"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
)

// micro holds the summaries of `go test -bench` output, read and computed by
// golang.org/x/perf (benchstat's own packages): package (relative to the
// module, e.g. "token") → benchmark name without "Benchmark" and the
// -GOMAXPROCS suffix → unit → median and its confidence interval.
type micro struct {
	order []benchKey
	runs  map[benchKey]int
	sum   map[benchKey]map[string]benchmath.Summary
}

type benchKey struct{ pkg, name string }

const module = "github.com/tegata-dev/tegata/"

// confidence is the level of the intervals, as benchstat's default.
const confidence = 0.95

// parseMicro reads `go test -bench -count N` output and summarizes each
// metric over the N runs with benchstat's non-parametric assumption (the
// median, with a confidence interval that makes no assumption about the
// distribution).
func parseMicro(r io.Reader) micro {
	vals := map[benchKey]map[string][]float64{}
	m := micro{runs: map[benchKey]int{}, sum: map[benchKey]map[string]benchmath.Summary{}}
	br := benchfmt.NewReader(r, "micro.txt")
	for br.Scan() {
		res, ok := br.Result().(*benchfmt.Result)
		if !ok {
			continue // a syntax error or unit metadata: not a result
		}
		base, parts := res.Name.Parts()
		name := string(base)
		for _, p := range parts {
			if len(p) > 0 && p[0] == '/' { // a sub-benchmark, not the -N of GOMAXPROCS
				name += string(p)
			}
		}
		k := benchKey{strings.TrimPrefix(res.GetConfig("pkg"), module), name}
		if vals[k] == nil {
			vals[k] = map[string][]float64{}
			m.order = append(m.order, k)
		}
		m.runs[k]++
		for _, v := range res.Values {
			// The units as go test wrote them (ns/op, not sec/op).
			unit, val := v.OrigUnit, v.OrigValue
			if unit == "" {
				unit, val = v.Unit, v.Value
			}
			vals[k][unit] = append(vals[k][unit], val)
		}
	}
	thresholds := benchmath.DefaultThresholds
	for k, units := range vals {
		m.sum[k] = map[string]benchmath.Summary{}
		for u, vs := range units {
			m.sum[k][u] = benchmath.AssumeNothing.Summary(benchmath.NewSample(vs, &thresholds), confidence)
		}
	}
	return m
}

// benchName turns "BenchmarkVerifyNew-2" into "VerifyNew".
func benchName(s string) string {
	s = strings.TrimPrefix(s, "Benchmark")
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		if _, err := strconv.Atoi(s[i+1:]); err == nil {
			s = s[:i]
		}
	}
	return s
}

// get returns the median of a benchmark's unit, and whether it ran.
func (m micro) get(pkg, name, unit string) (float64, bool) {
	v, ok := m.sum[benchKey{pkg, name}][unit]
	return v.Center, ok
}

// spread returns the confidence interval of a benchmark's unit around its
// median, as benchstat prints it ("±3%"), or "" if it did not run or ran
// too few times for one (benchstat needs 6 runs at 95%).
func (m micro) spread(pkg, name, unit string) string {
	v, ok := m.sum[benchKey{pkg, name}][unit]
	if !ok || math.IsInf(v.Lo, 0) || math.IsInf(v.Hi, 0) {
		return ""
	}
	return "±" + v.PctRangeString()
}
