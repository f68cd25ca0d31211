package keyproof

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/hostile.json from the cases in keyproof_test.go")

const corpusFile = "testdata/hostile.json"

// corpusCase is one proof of testdata/hostile.json: parseCases as stored,
// so that a change of the rules shows as a change of this file's verdicts
// and the fuzzer starts from every rule's edge.
type corpusCase struct {
	Name  string `json:"name"`
	Want  string `json:"want"` // sentinel name; "" for a control that must parse
	RS256 bool   `json:"rs256,omitempty"`
	Proof string `json:"proof"`
}

var sentinels = map[string]error{
	"": nil, "ErrTooLarge": ErrTooLarge, "ErrMalformed": ErrMalformed, "ErrHeader": ErrHeader,
	"ErrAlgorithm": ErrAlgorithm, "ErrType": ErrType, "ErrKey": ErrKey, "ErrSignature": ErrSignature,
}

func sentinelName(err error) string {
	for name, s := range sentinels {
		if s != nil && errors.Is(err, s) {
			return name
		}
	}
	return ""
}

func (c corpusCase) expect() Expect {
	e := Expect{Type: "dpop+jwt"}
	if c.RS256 {
		e.Algorithms = []string{ES256, EdDSA, RS256}
	}
	return e
}

func loadCorpus(tb testing.TB) []corpusCase {
	tb.Helper()
	if *update {
		var cases []corpusCase
		for _, c := range parseCases(tb) {
			cases = append(cases, corpusCase{Name: c.name, Want: sentinelName(c.want),
				RS256: slices.Contains(c.e.Algorithms, RS256), Proof: c.proof})
		}
		data, err := json.MarshalIndent(cases, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(corpusFile), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(corpusFile, append(data, '\n'), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	data, err := os.ReadFile(corpusFile)
	if err != nil {
		tb.Fatalf("read corpus (go test -run TestHostileCorpus -update writes it): %v", err)
	}
	var cases []corpusCase
	if err := json.Unmarshal(data, &cases); err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	return cases
}

// TestHostileCorpus parses every stored proof and wants its sentinel.
func TestHostileCorpus(t *testing.T) {
	cases := loadCorpus(t)
	if len(cases) < 30 {
		t.Fatalf("corpus has %d cases, want the whole table", len(cases))
	}
	for _, c := range cases {
		_, err := Parse(c.Proof, c.expect(), nil)
		if got := sentinelName(err); got != c.Want || (c.Want == "") != (err == nil) {
			t.Errorf("Parse(%s) = %v, want %s", c.Name, err, c.Want)
		}
	}
}
