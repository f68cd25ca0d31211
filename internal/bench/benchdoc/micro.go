package main

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"strings"
)

// micro holds the medians of `go test -bench` output: package (relative to
// the module, e.g. "token") → benchmark name without "Benchmark" and the
// -GOMAXPROCS suffix → unit → median value.
type micro struct {
	order []benchKey
	runs  map[benchKey]int
	med   map[benchKey]map[string]float64
}

type benchKey struct{ pkg, name string }

const module = "github.com/tegata-dev/tegata/"

// parseMicro reads `go test -bench -count N` output and keeps each
// metric's median over the N runs.
func parseMicro(r io.Reader) micro {
	vals := map[benchKey]map[string][]float64{}
	m := micro{runs: map[benchKey]int{}, med: map[benchKey]map[string]float64{}}
	pkg := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "pkg:":
			pkg = strings.TrimPrefix(f[1], module)
		case len(f) >= 4 && strings.HasPrefix(f[0], "Benchmark"):
			if _, err := strconv.Atoi(f[1]); err != nil {
				continue
			}
			k := benchKey{pkg, benchName(f[0])}
			if vals[k] == nil {
				vals[k] = map[string][]float64{}
				m.order = append(m.order, k)
			}
			m.runs[k]++
			for i := 2; i+1 < len(f); i += 2 {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					vals[k][f[i+1]] = append(vals[k][f[i+1]], v)
				}
			}
		}
	}
	for k, units := range vals {
		m.med[k] = map[string]float64{}
		for u, vs := range units {
			m.med[k][u] = median(vs)
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

func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// get returns the median of a benchmark's unit, and whether it ran.
func (m micro) get(pkg, name, unit string) (float64, bool) {
	v, ok := m.med[benchKey{pkg, name}][unit]
	return v, ok
}
