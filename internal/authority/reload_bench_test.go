package authority

import (
	"context"
	"testing"
)

// BenchmarkReloadKeys is a node's reload of unchanged keys, which every
// node makes every reloadEvery: the store's read of the keys and, when
// anything changed, the ring built again.
func BenchmarkReloadKeys(b *testing.B) {
	a, _ := newTestAuthority(b)
	ctx := context.Background()
	for b.Loop() {
		if err := a.ReloadKeys(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
