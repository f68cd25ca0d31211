package sqlstore

import (
	"context"
	"fmt"

	"github.com/tegata-dev/tegata/internal/store"
)

// ClaimCluster implements store.Cluster. The insert does nothing when a
// row exists (the single row's key is fixed), so concurrent first starts
// agree on whichever committed first.
func (s *Store) ClaimCluster(ctx context.Context, c store.ClusterInfo) (store.ClusterInfo, error) {
	if c.Issuer == "" || c.Epoch == "" {
		return store.ClusterInfo{}, fmt.Errorf("sqlstore: claim cluster: issuer and epoch are required")
	}
	var out store.ClusterInfo
	err := s.inTx(ctx, "claim cluster", func(t *tx) error {
		if _, err := t.exec(ctx, `INSERT INTO cluster (id, issuer, epoch, created_at) VALUES (1, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, c.Issuer, c.Epoch, micros(c.CreatedAt)); err != nil {
			return err
		}
		var created int64
		if err := t.queryRow(ctx, `SELECT issuer, epoch, created_at FROM cluster WHERE id = 1`).
			Scan(&out.Issuer, &out.Epoch, &created); err != nil {
			return err
		}
		out.CreatedAt = fromMicros(created)
		return nil
	})
	return out, err
}
