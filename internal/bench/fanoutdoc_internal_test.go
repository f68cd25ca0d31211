package bench

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"
)

// TestLineReachesItsEnd: the plot's lines end at their end point in every
// direction (a line that missed it would run on for ever).
func TestLineReachesItsEnd(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 50, 50))
	for _, end := range [][2]int{{49, 0}, {49, 20}, {49, 49}, {20, 49}, {0, 49}, {0, 0}, {3, 40}, {40, 3}, {25, 25}} {
		img.Set(end[0], end[1], color.White)
		line(img, 25, 25, end[0], end[1], color.Black)
		if got := img.RGBAAt(end[0], end[1]); got != (color.RGBA{0, 0, 0, 255}) {
			t.Errorf("line(25,25 → %d,%d) left its end point %v, want it drawn", end[0], end[1], got)
		}
	}
}

// fanoutPoints are a direct and a relayed curve on SQLite.
func fanoutPoints() (direct, relayed []FanoutPoint) {
	for i, n := range []int{10, 1000} {
		p := FanoutPoint{Backend: "sqlite", Verifiers: n, CPUPerRevVerifierUS: 12.5 / float64(i+1), Listed: n,
			Propagation: Summary{N: 3, P50: 1, P99: 2, Max: 3}}
		direct = append(direct, p)
		p.Relays, p.CPUPerRevVerifierUS = 4, 0.25
		p.Relay = &RelayCost{CPUPerRevVerifierUS: 9.75, CPUPerRevVerifierConfUS: 20, IdlePer1000: 0.01, ConnectMS: 0.5,
			MemPerVerifierKiB: 40, MemKiB: 40 * 1024}
		relayed = append(relayed, p)
	}
	return direct, relayed
}

func TestFanoutSectionAddsTheRelayedCurve(t *testing.T) {
	direct, relayed := fanoutPoints()
	r := &Report{}
	alone := fanoutSection("f.png", "tegata-bench fanout", r, direct)
	both := fanoutSection("f.png", "tegata-bench fanout --relays 0,4", r, append(append([]FanoutPoint(nil), direct...), relayed...))
	for _, s := range []string{alone, both} {
		if !strings.Contains(s, "| sqlite | 1000 | 1.0 / 2.0 / 3.0 | 6.25 |") {
			t.Errorf("section lacks the direct row at 1,000 as before:\n%s", s)
		}
	}
	if strings.Contains(alone, "relay") {
		t.Errorf("the direct section mentions relays:\n%s", alone)
	}
	for _, want := range []string{
		"| sqlite | 4 | 1000 | 1.0 / 2.0 / 3.0 | 0.25 / 9.75 / 10.00 | 0.00 / 20.00 / 20.00 | 0.00 / 1.00 | 0.00 / 0.50 | 40 / 40 |",
		"run on the same 2 cores", "one per verifier machine", "through relays SQLite green",
	} {
		if !strings.Contains(both, want) {
			t.Errorf("section with relays lacks %q:\n%s", want, both)
		}
	}
	if i, j := strings.Index(both, "| sqlite | 4 | 1000"), strings.Index(both, "| sqlite | 1000 |"); i < j {
		t.Errorf("the relayed table comes before the direct one:\n%s", both)
	}
}

// TestFanoutPNGDrawsTheRelayedSeries: a relayed series is drawn in its
// own colour, and a direct plot has none of it.
func TestFanoutPNGDrawsTheRelayedSeries(t *testing.T) {
	direct, relayed := fanoutPoints()
	green := plotColors[2]
	for _, tt := range []struct {
		name   string
		points []FanoutPoint
		want   bool
	}{
		{"direct", direct, false},
		{"direct and relayed", append(append([]FanoutPoint(nil), direct...), relayed...), true},
	} {
		img, err := png.Decode(bytes.NewReader(fanoutPNG(tt.points)))
		if err != nil {
			t.Fatalf("%s: fanoutPNG is not a PNG: %v", tt.name, err)
		}
		found := false
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y && !found; y++ {
			for x := b.Min.X; x < b.Max.X && !found; x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				found = uint8(r>>8) == green.R && uint8(g>>8) == green.G && uint8(bl>>8) == green.B
			}
		}
		if found != tt.want {
			t.Errorf("%s: relayed colour drawn = %v, want %v", tt.name, found, tt.want)
		}
	}
}
