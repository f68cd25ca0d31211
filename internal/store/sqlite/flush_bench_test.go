package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// BenchmarkSaveFollowers is one flush of a node with 1,000 verifiers, of
// which 150 records changed (an idle second: lease renewals moved their
// last-heard time).
func BenchmarkSaveFollowers(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "tegata.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0)
	vs := make([]store.VerifierRecord, 1000)
	for i := range vs {
		vs[i] = store.VerifierRecord{ID: fmt.Sprintf("v%04d-xxxxxxxxxxxx", i), Name: fmt.Sprintf("fanout-%d", i), Node: "node1",
			Position: 42, Ready: true, StaleAfter: 10 * time.Second, HeardAt: t0}
	}
	n := store.NodeRecord{ID: "node1", URL: "http://x", Safe: 42, Head: 42, Followers: 1000, UpdatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
	if _, err := s.SaveFollowers(ctx, n, vs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now := t0.Add(time.Duration(i+1) * time.Second)
		part := vs[(i*150)%850 : (i*150)%850+150]
		for j := range part {
			part[j].HeardAt = now
		}
		n.Version, n.UpdatedAt = int64(i+1), now
		if _, err := s.SaveFollowers(ctx, n, part); err != nil {
			b.Fatal(err)
		}
	}
}
