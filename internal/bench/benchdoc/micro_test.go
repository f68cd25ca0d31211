package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
pkg: github.com/tegata-dev/tegata/verifier
BenchmarkVerifyCached-2     	 8168785	       156.8 ns/op	       0 B/op	       0 allocs/op
BenchmarkVerifyCached-2     	 8168785	       150.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkVerifyCached-2     	 8168785	       170.0 ns/op	       0 B/op	       0 allocs/op
PASS
pkg: github.com/tegata-dev/tegata/token
BenchmarkTokenVerify-2     	 100	       100 ns/op
BenchmarkTokenVerify-2     	 100	       102 ns/op
BenchmarkTokenVerify-2     	 100	       98 ns/op
BenchmarkTokenVerify-2     	 100	       101 ns/op
BenchmarkTokenVerify-2     	 100	       99 ns/op
BenchmarkTokenVerify-2     	 100	       100 ns/op
PASS
pkg: github.com/tegata-dev/tegata/internal/revocation
BenchmarkSetMemory-2                  	       3	 342125316 ns/op	        42.00 B/entry	108052000 B/op	 1005122 allocs/op
BenchmarkSetMemory-2                  	       3	 342125316 ns/op	        44.00 B/entry	108052000 B/op	 1005122 allocs/op
`

func TestParseMicro(t *testing.T) {
	m := parseMicro(strings.NewReader(sample))
	tests := []struct {
		name, pkg, bench, unit string
		want                   float64
	}{
		{"odd count median", "verifier", "VerifyCached", "ns/op", 156.8},
		{"custom metric, even count", "internal/revocation", "SetMemory", "B/entry", 43},
		{"zero", "verifier", "VerifyCached", "allocs/op", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := m.get(tt.pkg, tt.bench, tt.unit)
			if !ok || got != tt.want {
				t.Errorf("get(%q, %q, %q) = %v, %v, want %v", tt.pkg, tt.bench, tt.unit, got, ok, tt.want)
			}
		})
	}
	if got := m.spread("token", "TokenVerify", "ns/op"); got != "±2%" {
		t.Errorf(`spread(TokenVerify) = %q, want "±2%%" (benchstat's 95%% interval of 6 runs: 98 to 102 around 100)`, got)
	}
	if got := m.spread("verifier", "VerifyCached", "ns/op"); got != "" {
		t.Errorf(`spread(VerifyCached, 3 runs) = %q, want "" (too few runs for an interval)`, got)
	}
	if got := m.runs[benchKey{"verifier", "VerifyCached"}]; got != 3 {
		t.Errorf("runs of VerifyCached = %d, want 3", got)
	}
	if _, ok := m.get("token", "Ed25519Verify", "ns/op"); ok {
		t.Errorf("get of a benchmark that did not run reported ok")
	}
}

func TestBenchName(t *testing.T) {
	for in, want := range map[string]string{
		"BenchmarkVerifyNew-2":          "VerifyNew",
		"BenchmarkVerifyNew":            "VerifyNew",
		"BenchmarkRevocationLookup-128": "RevocationLookup",
	} {
		if got := benchName(in); got != want {
			t.Errorf("benchName(%q) = %q, want %q", in, got, want)
		}
	}
}
