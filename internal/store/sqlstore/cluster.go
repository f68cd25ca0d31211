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
		var err error
		out, err = readCluster(ctx, t)
		return err
	})
	return out, err
}

// RenewEpoch implements store.Cluster.
func (s *Store) RenewEpoch(ctx context.Context, old, epoch string) (store.ClusterInfo, error) {
	if epoch == "" {
		return store.ClusterInfo{}, fmt.Errorf("sqlstore: renew epoch: the new epoch is required")
	}
	var out store.ClusterInfo
	err := s.inTx(ctx, "renew epoch", func(t *tx) error {
		if _, err := t.exec(ctx, `UPDATE cluster SET epoch = ? WHERE id = 1 AND epoch = ?`, epoch, old); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM feed_nodes WHERE head > (SELECT seq FROM log_head WHERE id = 1)`); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM feed_verifiers WHERE position > (SELECT seq FROM log_head WHERE id = 1)`); err != nil {
			return err
		}
		var err error
		out, err = readCluster(ctx, t)
		return err
	})
	return out, err
}

func readCluster(ctx context.Context, t *tx) (store.ClusterInfo, error) {
	var out store.ClusterInfo
	var created int64
	if err := t.queryRow(ctx, `SELECT issuer, epoch, created_at FROM cluster WHERE id = 1`).
		Scan(&out.Issuer, &out.Epoch, &created); err != nil {
		return out, err
	}
	out.CreatedAt = fromMicros(created)
	return out, nil
}
