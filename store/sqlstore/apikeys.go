package sqlstore

import (
	"context"
	"fmt"

	"github.com/tegata-dev/tegata/store"
)

const apiKeyColumns = `id, name, hash, role, created_at`

func scanAPIKey(row scanner) (store.APIKey, error) {
	var (
		k       store.APIKey
		hash    []byte
		created int64
	)
	if err := row.Scan(&k.ID, &k.Name, &hash, &k.Role, &created); err != nil {
		return store.APIKey{}, err
	}
	if len(hash) != len(k.Hash) {
		return store.APIKey{}, fmt.Errorf("api key %q: stored hash has %d bytes", k.ID, len(hash))
	}
	copy(k.Hash[:], hash)
	k.CreatedAt = fromMicros(created)
	return k, nil
}

// AddAPIKey implements store.APIKeys.
func (s *Store) AddAPIKey(ctx context.Context, k store.APIKey) error {
	_, err := s.exec(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES (?, ?, ?, ?, ?)`,
		k.ID, k.Name, k.Hash[:], k.Role, micros(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlstore: add api key %q: %w", k.Name, s.conflict(err))
	}
	return nil
}

// APIKeyByHash implements store.APIKeys.
func (s *Store) APIKeyByHash(ctx context.Context, hash [32]byte) (store.APIKey, error) {
	k, err := scanAPIKey(s.queryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = ?`, hash[:]))
	if err != nil {
		return store.APIKey{}, fmt.Errorf("sqlstore: api key by hash: %w", notFound(err, "api key"))
	}
	return k, nil
}

// ListAPIKeys implements store.APIKeys, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]store.APIKey, error) {
	rows, err := s.query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list api keys: %w", err)
	}
	defer rows.Close()
	var out []store.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list api keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list api keys: %w", err)
	}
	return out, nil
}
