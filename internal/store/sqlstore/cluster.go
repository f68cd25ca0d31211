package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
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
		settings, err := settingsText(c.Settings)
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, `INSERT INTO cluster (id, issuer, epoch, created_at, home, settings) VALUES (1, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, c.Issuer, c.Epoch, micros(c.CreatedAt), c.Home, settings); err != nil {
			return err
		}
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
		if _, err := renewEpoch(ctx, t, old, epoch); err != nil {
			return err
		}
		var err error
		out, err = readCluster(ctx, t)
		return err
	})
	return out, err
}

// renewEpoch replaces the epoch old with epoch and forgets the node and
// verifier records beyond the log's head. It reports whether the epoch was
// still old.
func renewEpoch(ctx context.Context, t *tx, old, epoch string) (bool, error) {
	n, err := rowsAffected(t.exec(ctx, `UPDATE cluster SET epoch = ? WHERE id = 1 AND epoch = ?`, epoch, old))
	if err != nil || n == 0 {
		return false, err
	}
	if _, err := t.exec(ctx, `DELETE FROM feed_nodes WHERE head > (SELECT seq FROM log_head WHERE id = 1)`); err != nil {
		return false, err
	}
	if _, err := t.exec(ctx, `DELETE FROM feed_verifiers WHERE position > (SELECT seq FROM log_head WHERE id = 1)`); err != nil {
		return false, err
	}
	return true, nil
}

func readCluster(ctx context.Context, t *tx) (store.ClusterInfo, error) {
	var out store.ClusterInfo
	var created int64
	var settings string
	var restored sql.NullInt64
	if err := t.queryRow(ctx, `SELECT issuer, epoch, created_at, home, settings, restored_at FROM cluster WHERE id = 1`).
		Scan(&out.Issuer, &out.Epoch, &created, &out.Home, &settings, &restored); err != nil {
		return out, err
	}
	out.CreatedAt = fromMicros(created)
	out.RestoredAt = fromNullMicros(restored)
	if settings != "" {
		if err := json.Unmarshal([]byte(settings), &out.Settings); err != nil {
			return out, fmt.Errorf("cluster settings: %w", err)
		}
	}
	return out, nil
}
