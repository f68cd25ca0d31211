package bench_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/bench"
)

// TestFanoutShort runs the fan-out benchmark small, on both backends, and
// writes its section into a copy of a Markdown file twice: the second
// write replaces the first.
func TestFanoutShort(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, points, err := bench.Fanout(ctx, bench.FanoutConfig{Setup: setup(t), Counts: []int{2, 5}, Gates: 1, Rate: 50,
		Revocations: 3, Idle: 100 * time.Millisecond, Settle: 100 * time.Millisecond, Bulk: 50, PostgresNodes: 2})
	if err != nil {
		t.Fatalf("Fanout() = %v", err)
	}
	if r.Failed() {
		t.Fatalf("Fanout() failures: %v", r.Failures)
	}
	if len(points) != 4 {
		t.Fatalf("Fanout() = %d points, want 2 counts × 2 backends", len(points))
	}
	for _, p := range points {
		if p.Listed != p.Verifiers || p.Propagation.N != 3 || p.Confirm.N != 3 {
			t.Errorf("point %+v: want every verifier listed and 3 revocations measured per phase", p)
		}
	}
	dir := t.TempDir()
	doc, img := filepath.Join(dir, "b.md"), filepath.Join(dir, "f.png")
	if err := os.WriteFile(doc, []byte("# Benchmarks\n\nbefore\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := bench.WriteFanoutDoc(doc, img, "f.png", "tegata-bench fanout", r, points); err != nil {
			t.Fatalf("WriteFanoutDoc() = %v", err)
		}
	}
	b, _ := os.ReadFile(doc)
	if n := strings.Count(string(b), "### Fan-out"); n != 1 || !strings.HasPrefix(string(b), "# Benchmarks\n\nbefore\n") {
		t.Errorf("doc after two writes holds %d fan-out sections (want 1, after the text that was there):\n%s", n, b)
	}
	pb, _ := os.ReadFile(img)
	if _, err := png.Decode(bytes.NewReader(pb)); err != nil {
		t.Errorf("the plot is not a PNG: %v", err)
	}
}

// TestFanoutThroughRelays runs the fan-out small through two relays, on
// SQLite and on two Postgres nodes: every in-process verifier follows a
// relay and gets every revocation and the bulk through it, the gate
// rejects them through a relay too, the nodes list the relays, the
// relays' memory is counted, and the doc gets the relayed table.
func TestFanoutThroughRelays(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, points, err := bench.Fanout(ctx, bench.FanoutConfig{Setup: setup(t), Counts: []int{3, 6}, Gates: 1, Rate: 50,
		Revocations: 3, Idle: 100 * time.Millisecond, Settle: 100 * time.Millisecond, Bulk: 50, PostgresNodes: 2, Relays: []int{2}})
	if err != nil {
		t.Fatalf("Fanout(2 relays) = %v", err)
	}
	if r.Failed() {
		t.Fatalf("Fanout(2 relays) failures: %v", r.Failures)
	}
	if len(points) != 4 {
		t.Fatalf("Fanout(2 relays) = %d points, want 2 counts × 2 backends", len(points))
	}
	for _, p := range points {
		if p.Relays != 2 || p.Relay == nil || p.Relay.MemKiB <= 0 {
			t.Errorf("point %+v: want 2 relays and their memory", p)
		}
		if p.Listed != 2 || p.Propagation.N != 3 || p.Confirm.N != 3 {
			t.Errorf("point %+v: want the 2 relays listed and 3 revocations measured per phase", p)
		}
	}
	if last := points[len(points)-1]; last.BulkMS <= 0 || last.BulkErr != "" {
		t.Errorf("the bulk through the relays: %.0f ms, %q, want it at every verifier", last.BulkMS, last.BulkErr)
	}
	dir := t.TempDir()
	doc := filepath.Join(dir, "b.md")
	if err := os.WriteFile(doc, []byte("# Benchmarks\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := bench.WriteFanoutDoc(doc, filepath.Join(dir, "f.png"), "f.png", "tegata-bench fanout --relays 2", r, points); err != nil {
		t.Fatalf("WriteFanoutDoc() = %v", err)
	}
	if b, _ := os.ReadFile(doc); !strings.Contains(string(b), "| sqlite | 2 | 6 |") || !strings.Contains(string(b), "| postgres | 2 | 6 |") {
		t.Errorf("doc lacks the relayed rows at 6 verifiers:\n%s", b)
	}
}
