package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// LeaseLifetime implements store.Lifetimes. A row per lifetime keeps the
// latest minted_until it was given: leases only ever grow.
func (s *Store) LeaseLifetime(ctx context.Context, lifetime time.Duration, until time.Time) error {
	_, err := s.exec(ctx, `INSERT INTO token_lifetimes (lifetime, minted_until) VALUES (?, ?)
		ON CONFLICT (lifetime) DO UPDATE SET minted_until = CASE
			WHEN excluded.minted_until > token_lifetimes.minted_until THEN excluded.minted_until
			ELSE token_lifetimes.minted_until END`,
		lifetime.Microseconds(), micros(until))
	if err != nil {
		return fmt.Errorf("sqlstore: lease lifetime: %w", err)
	}
	return nil
}

// LifetimeLeases implements store.Lifetimes.
func (s *Store) LifetimeLeases(ctx context.Context) ([]store.LifetimeLease, error) {
	rows, err := s.query(ctx, `SELECT lifetime, minted_until FROM token_lifetimes ORDER BY lifetime`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: lifetime leases: %w", err)
	}
	defer rows.Close()
	var out []store.LifetimeLease
	for rows.Next() {
		var lifetime, until int64
		if err := rows.Scan(&lifetime, &until); err != nil {
			return nil, fmt.Errorf("sqlstore: lifetime leases: %w", err)
		}
		out = append(out, store.LifetimeLease{Lifetime: time.Duration(lifetime) * time.Microsecond, Until: fromMicros(until)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: lifetime leases: %w", err)
	}
	return out, nil
}

// PruneLifetimeLeases implements store.Lifetimes.
func (s *Store) PruneLifetimeLeases(ctx context.Context, before time.Time) (int64, error) {
	n, err := rowsAffected(s.exec(ctx, `DELETE FROM token_lifetimes WHERE minted_until + lifetime < ?`, micros(before)))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: prune lifetime leases: %w", err)
	}
	return n, nil
}
