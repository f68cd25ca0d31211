package bench

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadyURL(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"relay listening", `time=2026-12-07T20:00:00Z level=INFO msg="tegata relay listening" url=http://127.0.0.1:4242 upstream=http://127.0.0.1:1`, "http://127.0.0.1:4242"},
		{"ready at", `tegata relay: ready at http://127.0.0.1:4243`, "http://127.0.0.1:4243"},
		{"ready at, quoted in a message", `level=INFO msg="relay ready at http://127.0.0.1:4244" upstream=x`, "http://127.0.0.1:4244"},
		{"addr attribute", `level=INFO msg="tegata relay listening" addr=127.0.0.1:4245`, "http://127.0.0.1:4245"},
		{"url attribute on a ready line", `level=INFO msg=ready url="http://127.0.0.1:4246"`, "http://127.0.0.1:4246"},
		{"other line with an addr", `level=INFO msg="following upstream" addr=127.0.0.1:1`, ""},
		{"other line", `level=INFO msg="relay synced" position=42`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readyURL(tt.line); got != tt.want {
				t.Errorf("readyURL(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

func TestRelayArgsFollowTheNodesInTurn(t *testing.T) {
	c := &cluster{urls: []string{"http://n0", "http://n1", "http://n2"}}
	for i, want := range []string{"http://n0,http://n1,http://n2", "http://n1,http://n2,http://n0", "http://n2,http://n0,http://n1", "http://n0,http://n1,http://n2"} {
		args := strings.Join(relayArgs(rotate(c.urls, i)), " ")
		if !strings.HasPrefix(args, "relay --upstream "+want+" --listen 127.0.0.1:0 ") {
			t.Errorf("relay %d: args %q, want it to follow %s first", i, args, want)
		}
	}
	if got := c.followURLs(); strings.Join(got, ",") != strings.Join(c.urls, ",") {
		t.Errorf("followURLs() without relays = %v, want the nodes %v", got, c.urls)
	}
	c.relayURLs = []string{"http://r0", "http://r1"}
	if got := rotate(c.followURLs(), 3); strings.Join(got, ",") != "http://r1,http://r0" {
		t.Errorf("verifier 3 of 2 relays follows %v, want relay 1 first", got)
	}
}

// TestProcsUsageSumsEveryProcess starts three children that each burn at
// least 0.3 s of CPU (by getrusage, finer than /proc's 10 ms ticks, hence
// the margin), and checks that their sum counts it all, that each counts
// towards it, and that a stopped one counts nothing.
func TestProcsUsageSumsEveryProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const each, margin = 0.3, 0.05
	var ps []*process
	for i := range 3 {
		p, err := startProcess(Setup{Binary: bin, Env: []string{"TEGATA_BENCH_SPIN=" + strconv.FormatFloat(each, 'f', -1, 64)}}, "", "spinner "+strconv.Itoa(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.stop()
		ps = append(ps, p)
	}
	for _, p := range ps {
		if _, err := p.waitLine(ctx, spun, "'spun' line"); err != nil {
			t.Fatal(err)
		}
	}
	all, rss := procsUsage(ps)
	if all < 3*(each-margin) || rss <= 0 {
		t.Fatalf("procsUsage(3 spinners of %g s) = %.2f s, %.0f KiB, want at least %g s and some memory", each, all, rss, 3*(each-margin))
	}
	one, _ := procsUsage(ps[:1])
	two, _ := procsUsage(ps[1:])
	if one < each-margin || two < 2*(each-margin) || one+two < all {
		t.Errorf("procsUsage: first %.2f s, others %.2f s, all %.2f s: want each part to count", one, two, all)
	}
	ps[0].stop()
	if got, _ := procsUsage(ps[:1]); got != 0 {
		t.Errorf("procsUsage(a stopped spinner) = %.2f s, want 0", got)
	}
}

// spun finds a spinner's "spun" line.
func spun(line string) string {
	if strings.HasPrefix(line, "spun") {
		return line
	}
	return ""
}
