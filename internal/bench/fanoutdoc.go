package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strings"
)

// Markers of the fan-out section in docs/benchmarks.md, which
// WriteFanoutDoc replaces.
const (
	fanoutBegin = "<!-- fanout:begin (tegata-bench fanout --doc) -->"
	fanoutEnd   = "<!-- fanout:end -->"
)

// WriteFanoutDoc writes the curve as a PNG to pngPath and replaces the
// fan-out section of the Markdown file docPath (between its markers, or
// at its end) with the table, the targets and the command that made them.
func WriteFanoutDoc(docPath, pngPath, pngRef, command string, r *Report, points []FanoutPoint) error {
	if err := os.WriteFile(pngPath, fanoutPNG(points), 0o644); err != nil {
		return err
	}
	old, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	section := fanoutSection(pngRef, command, r, points)
	doc := string(old)
	i, j := strings.Index(doc, fanoutBegin), strings.Index(doc, fanoutEnd)
	if i >= 0 && j > i {
		doc = doc[:i] + section + doc[j+len(fanoutEnd):]
	} else {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + section + "\n"
	}
	return os.WriteFile(docPath, []byte(doc), 0o644)
}

func fanoutSection(pngRef, command string, r *Report, points []FanoutPoint) string {
	var b strings.Builder
	b.WriteString(fanoutBegin + "\n")
	b.WriteString("### Fan-out: one revocation to thousands of verifiers\n\n")
	fmt.Fprintf(&b, "`%s` (%.0f s). ", command, r.Seconds)
	for _, p := range r.Params {
		fmt.Fprintf(&b, "%s: %s; ", p.Name, p.Value)
	}
	b.WriteString("\nIn-process verifiers are real feed clients (`internal/feed`) over loopback, each naming itself and " +
		"reporting, plus real `tegata gate` processes; all share the machine with the nodes. Propagation: the revoke call's " +
		"answer → the entry applied by every in-process verifier (each rejects the token from then on; every gate is then " +
		"checked to reject it too). Node CPU is that of the authority processes (all three on Postgres; Postgres itself " +
		"not counted), beyond their idle rate, divided by revocations and verifiers. Connect: the node CPU from the first " +
		"new connection until every verifier is current and 2 s more, beyond the idle rate of the streams open meanwhile, " +
		"per new verifier. The bulk column adds the CPU " +
		"seconds the nodes and the in-process verifiers (this one process, decoding and applying every entry for every " +
		"verifier) spent until every verifier held the bulk.\n\n")
	direct, relayed := splitTopologies(points)
	b.WriteString("| backend | verifiers | propagation p50 / p99 / max (ms) | node CPU per revocation per verifier (µs) | same, with `?confirm=5s` (µs) | idle node CPU per 1,000 (% of a core) | connect (ms CPU per verifier) | node memory per verifier (KiB) | confirm call p50 / p99 (ms) | bulk 10,000 → all (ms) | listed |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range direct {
		fmt.Fprintf(&b, "| %s | %d | %.1f / %.1f / %.1f | %.2f | %.2f | %.2f | %.2f | %.0f | %.1f / %.1f | %s | %d |\n",
			p.Backend, p.Verifiers, p.Propagation.P50, p.Propagation.P99, p.Propagation.Max, p.CPUPerRevVerifierUS,
			p.CPUPerRevVerifierConfUS, p.IdlePer1000*100, p.ConnectMS, p.MemPerStreamKiB, p.Confirm.P50, p.Confirm.P99, bulkCell(p), p.Listed)
	}
	if len(relayed) > 0 {
		relayedTable(&b, relayed)
	}
	if len(r.Targets) > 0 {
		b.WriteString("\n| goal | target | measured | met |\n|---|---|---|---|\n")
		for _, t := range r.Targets {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name, t.Goal, t.Measured, map[bool]string{true: "yes", false: "**no**"}[t.Pass])
		}
	}
	legend := "SQLite blue, Postgres orange"
	if len(relayed) > 0 {
		legend += "; through relays SQLite green, Postgres red, the nodes' CPU as a thick line and the nodes' and relays' together as a thin one"
	}
	fmt.Fprintf(&b, "\n![node CPU per revocation per verifier (top, µs) and propagation p99 (bottom, ms) against the "+
		"number of verifiers, both axes logarithmic; %s, goals as grey marks](%s)\n", legend, pngRef)
	b.WriteString(fanoutEnd)
	return b.String()
}

// splitTopologies parts points into those of the direct topology and
// those through relays, each in the order measured.
func splitTopologies(points []FanoutPoint) (direct, relayed []FanoutPoint) {
	for _, p := range points {
		if p.Relays > 0 {
			relayed = append(relayed, p)
		} else {
			direct = append(direct, p)
		}
	}
	return direct, relayed
}

// bulkCell is a point's bulk column: the time to every verifier and who
// spent CPU on it, "–" at counts without a bulk.
func bulkCell(p FanoutPoint) string {
	bulk := "–"
	switch {
	case p.BulkErr != "":
		bulk = "not within 60 s"
	case p.BulkMS > 0:
		bulk = fmt.Sprintf("%.0f", p.BulkMS)
	}
	if p.BulkNodeCPU > 0 {
		relays := ""
		if p.Relay != nil {
			relays = fmt.Sprintf(", relays %.1f s", p.Relay.BulkCPU)
		}
		bulk += fmt.Sprintf(" (CPU: node %.1f s%s, verifiers %.1f s)", p.BulkNodeCPU, relays, p.BulkFollowerCPU)
	}
	return bulk
}

// relayedTable writes the curve through relays: the nodes' CPU (the
// issue's figure), the relays', and both together, with the latencies end
// to end.
func relayedTable(b *strings.Builder, points []FanoutPoint) {
	b.WriteString("\n**Through relays.** The same phases with `tegata relay` processes between the nodes and the " +
		"verifiers: relay i follows node i mod nodes, verifier i (gates first, then the in-process ones) follows relay " +
		"i mod relays, which passes a gate's other requests (discovery, keys) through to its node. " +
		"Node columns are the authority processes' CPU alone, the issue's figure; relay columns sum the relay processes, " +
		"measured the same way (beyond their idle rate; connect and memory per verifier added); all is both. Propagation, " +
		"`?confirm=` and the bulk are end to end through the relays. **Here the relays run on the same 2 cores as the " +
		"nodes and the verifiers; in a deployment they run one per verifier machine**, where their CPU and their " +
		"loopback writes to the verifiers are spent, and the node pays one stream per relay.\n\n")
	b.WriteString("| backend | relays | verifiers | propagation p50 / p99 / max (ms) | CPU per revocation per verifier: node / relays / all (µs) | same, with `?confirm=5s` (µs) | idle CPU per 1,000: node / relays (% of a core) | connect: node / relays (ms CPU per verifier) | relay memory per verifier (KiB) / in all (MiB) | confirm call p50 / p99 (ms) | bulk 10,000 → all (ms) | listed by the nodes (the relays) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range points {
		c := p.Relay
		if c == nil {
			c = &RelayCost{}
		}
		fmt.Fprintf(b, "| %s | %d | %d | %.1f / %.1f / %.1f | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.0f / %.0f | %.1f / %.1f | %s | %d |\n",
			p.Backend, p.Relays, p.Verifiers, p.Propagation.P50, p.Propagation.P99, p.Propagation.Max,
			p.CPUPerRevVerifierUS, c.CPUPerRevVerifierUS, p.CPUPerRevVerifierUS+c.CPUPerRevVerifierUS,
			p.CPUPerRevVerifierConfUS, c.CPUPerRevVerifierConfUS, p.CPUPerRevVerifierConfUS+c.CPUPerRevVerifierConfUS,
			p.IdlePer1000*100, c.IdlePer1000*100, p.ConnectMS, c.ConnectMS, c.MemPerVerifierKiB, c.MemKiB/1024,
			p.Confirm.P50, p.Confirm.P99, bulkCell(p), p.Listed)
	}
}

// plotColors are the series' colours: SQLite, Postgres, then the same
// through relays.
var plotColors = []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}}

// seriesColor is the colour of p's series: by backend, the next pair
// through relays.
func seriesColor(p FanoutPoint) color.RGBA {
	i := 0
	if p.Backend == "postgres" {
		i = 1
	}
	if p.Relays > 0 {
		i += 2
	}
	return plotColors[i]
}

// relaysCPU is the nodes' and relays' CPU per revocation per verifier of a
// relayed point, the thin line of its series; 0 for a direct one.
func relaysCPU(p FanoutPoint) float64 {
	if p.Relay == nil {
		return 0
	}
	return p.CPUPerRevVerifierUS + p.Relay.CPUPerRevVerifierUS
}

// fanoutPNG draws two panels against the verifier count, both axes
// logarithmic: node CPU per revocation per verifier, and propagation p99;
// one line per backend and topology (through relays, a thin one for the
// nodes' and relays' CPU together), the goals as grey marks.
func fanoutPNG(points []FanoutPoint) []byte {
	const w, h = 720, 560
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(img, img.Bounds(), color.White)
	bySeries := map[string][]FanoutPoint{}
	var order []string
	for _, p := range points {
		if _, ok := bySeries[p.label()]; !ok {
			order = append(order, p.label())
		}
		bySeries[p.label()] = append(bySeries[p.label()], p)
	}
	panels := []struct {
		label string
		y     func(FanoutPoint) float64
		thin  func(FanoutPoint) float64 // a second, thin line of the series where > 0
		goals [][2]float64              // (n, value) marks
	}{
		{"cpu us", func(p FanoutPoint) float64 { return p.CPUPerRevVerifierUS }, relaysCPU, [][2]float64{{1000, 5}, {2000, 5}}},
		{"p99 ms", func(p FanoutPoint) float64 { return p.Propagation.P99 }, func(FanoutPoint) float64 { return 0 }, [][2]float64{{1000, 30}, {2000, 60}}},
	}
	legend := 120 // the legend's width: 8 pixels a letter
	for _, name := range order {
		legend = max(legend, 8*len(name)+8)
	}
	for i, pn := range panels {
		r := image.Rect(70, 20+i*270, w-20, 20+i*270+220)
		// Both axes are logarithmic: the costs span from hundreds of µs
		// (a revocation's fixed cost shared by ten verifiers) to a few.
		lo, hi := math.Inf(1), 0.0
		for _, p := range points {
			for _, v := range []float64{pn.y(p), pn.thin(p)} {
				if v > 0 {
					lo, hi = min(lo, v), max(hi, v)
				}
			}
		}
		for _, g := range pn.goals {
			lo, hi = min(lo, g[1]), max(hi, g[1])
		}
		ylo, yhi := math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
		if yhi <= ylo {
			yhi = ylo * 10
		}
		nmin, nmax := 10.0, 2000.0
		for _, p := range points {
			nmin, nmax = min(nmin, float64(p.Verifiers)), max(nmax, float64(p.Verifiers))
		}
		xAt := func(n float64) int {
			return r.Min.X + int(float64(r.Dx())*(math.Log10(n)-math.Log10(nmin))/(math.Log10(nmax)-math.Log10(nmin)))
		}
		yAt := func(v float64) int {
			v = max(v, ylo)
			return r.Max.Y - int(float64(r.Dy())*(math.Log10(v)-math.Log10(ylo))/(math.Log10(yhi)-math.Log10(ylo)))
		}
		grey := color.RGBA{200, 200, 200, 255}
		for v := ylo; v <= yhi*1.001; v *= 10 {
			line(img, r.Min.X, yAt(v), r.Max.X, yAt(v), grey)
			text(img, 4, yAt(v)-3, trimFloat(v), color.Black)
		}
		for _, n := range []float64{10, 100, 1000, 2000} {
			if n >= nmin && n <= nmax {
				line(img, xAt(n), r.Min.Y, xAt(n), r.Max.Y, grey)
				text(img, xAt(n)-8, r.Max.Y+6, trimFloat(n), color.Black)
			}
		}
		for _, g := range pn.goals {
			gx, gy := xAt(g[0]), yAt(g[1])
			line(img, gx-12, gy, gx+12, gy, color.RGBA{120, 120, 120, 255})
		}
		line(img, r.Min.X, r.Max.Y, r.Max.X, r.Max.Y, color.Black)
		line(img, r.Min.X, r.Min.Y, r.Min.X, r.Max.Y, color.Black)
		text(img, r.Min.X+6, r.Min.Y+2, pn.label, color.Black)
		for bi, name := range order {
			ps := bySeries[name]
			c := seriesColor(ps[0])
			for j := range ps {
				x, y := xAt(float64(ps[j].Verifiers)), yAt(pn.y(ps[j]))
				fill(img, image.Rect(x-3, y-3, x+4, y+4), c)
				if j > 0 {
					thick(img, xAt(float64(ps[j-1].Verifiers)), yAt(pn.y(ps[j-1])), x, y, c)
				}
				if j > 0 && pn.thin(ps[j-1]) > 0 && pn.thin(ps[j]) > 0 {
					line(img, xAt(float64(ps[j-1].Verifiers)), yAt(pn.thin(ps[j-1])), x, yAt(pn.thin(ps[j])), c)
				}
			}
			text(img, r.Max.X-legend, r.Min.Y+4+bi*12, name, c)
		}
	}
	text(img, w/2-40, h-14, "verifiers", color.Black)
	var buf bytes.Buffer
	_ = png.Encode(&buf, img) // an in-memory RGBA always encodes
	return buf.Bytes()
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.Set(x, y, c)
		}
	}
}

// line draws a one-pixel line (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func thick(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	for d := -1; d <= 1; d++ {
		line(img, x0, y0+d, x1, y1+d, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// glyphs is a 3×5 pixel font for what the plot writes: each row of a
// glyph is three bits, the top row first.
var glyphs = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7}, '4': {5, 5, 7, 1, 1},
	'5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1}, '8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7},
	'.': {0, 0, 0, 0, 2}, ' ': {}, 'c': {0, 7, 4, 4, 7}, 'e': {7, 5, 7, 4, 7}, 'f': {3, 4, 6, 4, 4},
	'g': {7, 5, 7, 1, 7}, 'i': {2, 0, 2, 2, 2}, 'l': {2, 2, 2, 2, 3}, 'm': {0, 7, 7, 5, 5}, 'o': {0, 7, 5, 5, 7},
	'p': {7, 5, 7, 4, 4}, 'q': {7, 5, 7, 1, 1}, 'r': {0, 7, 4, 4, 4}, 's': {7, 4, 7, 1, 7}, 't': {4, 7, 4, 4, 3},
	'u': {0, 5, 5, 5, 7}, 'v': {0, 5, 5, 5, 2}, 'a': {0, 6, 3, 5, 7}, 'y': {5, 5, 7, 1, 7},
}

// text writes s at (x, y) in the 3×5 font scaled by two.
func text(img *image.RGBA, x, y int, s string, c color.Color) {
	for _, ch := range s {
		g := glyphs[ch]
		for row, bits := range g {
			for col := 0; col < 3; col++ {
				if bits&(4>>col) != 0 {
					fill(img, image.Rect(x+col*2, y+row*2, x+col*2+2, y+row*2+2), c)
				}
			}
		}
		x += 8
	}
}
