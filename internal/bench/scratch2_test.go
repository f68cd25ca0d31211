package bench

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/revocation"
)

func TestScratchSetMem(t *testing.T) {
	for _, n := range []int{100_000, 1_000_000} {
		before := liveHeap()
		s := revocation.NewSet(0)
		exp := time.Now().Add(time.Hour)
		for i := range n {
			_ = s.Apply(revocation.Entry{Seq: int64(i + 1), Kind: revocation.KindSubject, Subject: fmt.Sprintf("flood-%d", i), Generation: 1, ExpiresAt: exp})
		}
		after := liveHeap()
		t.Logf("%d subject entries: %.1f B/entry", n, float64(after-before)/float64(n))
		runtime.KeepAlive(s)
	}
}
