package main

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestParseExplanations(t *testing.T) {
	text := "# preface\n\nignored\n\n## a b\n\nfirst\nsection\n\n## c\nsecond\n"
	got := parseExplanations(text)
	want := map[string]string{"a": "first\nsection", "b": "first\nsection", "c": "second"}
	if !maps.Equal(got, want) {
		t.Errorf("parseExplanations(%q) = %q, want %q", text, got, want)
	}
}

// TestExplanationsMatchTargets: every target benchdoc lists figures for has
// a hand-written explanation in analysis.md, and every section of
// analysis.md explains a target that exists, so neither outlives the other.
func TestExplanationsMatchTargets(t *testing.T) {
	known := map[string]bool{}
	for id := range figures {
		known[id] = true
		if explanations[id] == "" {
			t.Errorf("target %q has figures but no section in analysis.md", id)
		}
	}
	for _, m := range microTargets {
		known[m.id] = true
	}
	for _, id := range slices.Sorted(maps.Keys(explanations)) {
		if !known[id] {
			t.Errorf("analysis.md explains %q, which is no target", id)
		}
		if strings.Contains(explanations[id], "\n## ") {
			t.Errorf("section %q holds another section's heading", id)
		}
	}
}
