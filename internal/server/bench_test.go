package server_test

import (
	"fmt"
	"testing"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/server"
)

// BenchmarkBulkRevocation measures POST /v1/revocations of 10,000 subject
// cutoffs end to end through an in-process authority: the time per item.
func BenchmarkBulkRevocation(b *testing.B) {
	for _, store := range []string{"sqlite", "postgres"} {
		b.Run(store, func(b *testing.B) {
			var tune func(*server.Config)
			if store == "postgres" {
				dsn := pgtest.Schema(b)
				tune = func(c *server.Config) { c.DB = dsn }
			}
			e := start(b, tune)
			const n = 10_000
			items := make([]client.RevokeItem, n)
			b.ResetTimer()
			for i := range b.N {
				for j := range items {
					items[j] = client.RevokeItem{Subject: fmt.Sprintf("u-%d-%d", i, j)}
				}
				if _, err := e.admin.RevokeMany(ctx(b), client.BulkRevocation{Items: items, Reason: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
		})
	}
}
