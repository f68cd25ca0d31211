package bench

import (
	"image"
	"image/color"
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
