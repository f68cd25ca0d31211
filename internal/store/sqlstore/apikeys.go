package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

const apiKeyColumns = `id, name, hash, role, created_at, installed_as`

// roleAdmin is the role RevokeAPIKey keeps at least one live key of.
const roleAdmin = "admin"

func scanAPIKey(row scanner) (store.APIKey, error) {
	var (
		k       store.APIKey
		hash    []byte
		created int64
	)
	if err := row.Scan(&k.ID, &k.Name, &hash, &k.Role, &created, &k.InstalledAs); err != nil {
		return store.APIKey{}, err
	}
	if len(hash) != len(k.Hash) {
		return store.APIKey{}, fmt.Errorf("api key %q: stored hash has %d bytes", k.ID, len(hash))
	}
	copy(k.Hash[:], hash)
	k.CreatedAt = fromMicros(created)
	return k, nil
}

// apiKeyTarget names a key in the audit trail by name and ID, so a record
// still says which key it was once the key is revoked and its name reused.
func apiKeyTarget(k store.APIKey) string { return k.Name + " (" + k.ID + ")" }

// AddAPIKey implements store.APIKeys.
func (s *Store) AddAPIKey(ctx context.Context, k store.APIKey, a store.Actor) error {
	return s.inTx(ctx, fmt.Sprintf("add api key %q", k.Name), func(t *tx) error {
		if _, err := t.exec(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			k.ID, k.Name, k.Hash[:], k.Role, micros(k.CreatedAt), k.InstalledAs); err != nil {
			return s.conflict(err)
		}
		return record(ctx, t, store.AuditRecord{At: k.CreatedAt, Actor: a, Action: "apikey.create", Target: apiKeyTarget(k)})
	})
}

// APIKeyByHash implements store.APIKeys.
func (s *Store) APIKeyByHash(ctx context.Context, hash [32]byte) (store.APIKey, error) {
	k, err := scanAPIKey(s.queryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE hash = ? AND revoked_at IS NULL`, hash[:]))
	if err != nil {
		return store.APIKey{}, fmt.Errorf("sqlstore: api key by hash: %w", notFound(err, "api key"))
	}
	return k, nil
}

// APIKeyRevoked implements store.APIKeys.
func (s *Store) APIKeyRevoked(ctx context.Context, hash [32]byte) (bool, error) {
	var revoked sql.NullInt64
	err := s.queryRow(ctx, `SELECT revoked_at FROM api_keys WHERE hash = ?`, hash[:]).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlstore: api key revoked: %w", err)
	}
	return revoked.Valid, nil
}

// ListAPIKeys implements store.APIKeys.
func (s *Store) ListAPIKeys(ctx context.Context) ([]store.APIKey, error) {
	rows, err := s.query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE revoked_at IS NULL ORDER BY created_at, id`)
	out, err := collect(rows, err, scanAPIKey)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list api keys: %w", err)
	}
	return out, nil
}

// RevokeAPIKey implements store.APIKeys. It locks the key and every live
// admin key, in ID order so that concurrent revocations cannot deadlock;
// a revocation waiting on the lock then sees the other's outcome (on
// Postgres the locked rows are re-checked against the WHERE clause), so the
// last admin key always survives.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, now time.Time, a store.Actor) error {
	return s.inTx(ctx, "revoke api key", func(t *tx) error {
		target, admins, err := lockAPIKeys(ctx, t, id)
		if err != nil {
			return err
		}
		if target.ID == "" {
			return fmt.Errorf("api key %q: %w", id, store.ErrNotFound)
		}
		if target.Role == roleAdmin && admins < 2 {
			return fmt.Errorf("api key %q: %w", id, store.ErrLastAdminKey)
		}
		if _, err := t.exec(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, micros(now), id); err != nil {
			return err
		}
		return record(ctx, t, store.AuditRecord{At: now, Actor: a, Action: "apikey.revoke", Target: apiKeyTarget(target)})
	})
}

// lockAPIKeys locks the live key id (returned; zero if there is none) and
// every live admin key, and counts the latter.
func lockAPIKeys(ctx context.Context, t *tx, id string) (store.APIKey, int, error) {
	rows, err := t.query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE revoked_at IS NULL AND (id = ? OR role = ?) ORDER BY id`+t.d.lock(), id, roleAdmin)
	if err != nil {
		return store.APIKey{}, 0, err
	}
	defer rows.Close()
	var (
		target store.APIKey
		admins int
	)
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return store.APIKey{}, 0, err
		}
		if k.ID == id {
			target = k
		}
		if k.Role == roleAdmin {
			admins++
		}
	}
	return target, admins, rows.Err()
}

// RetireInstalledAPIKeys implements store.APIKeys. The kept key and the
// keys to retire are locked together, in ID order (as RevokeAPIKey locks
// keys), so that nodes starting at once with different secrets cannot
// deadlock: one of them retires the others' keys, and each of those finds
// its own key revoked.
func (s *Store) RetireInstalledAPIKeys(ctx context.Context, installedAs string, keep [32]byte, now time.Time, a store.Actor) ([]store.APIKey, error) {
	var retired []store.APIKey
	err := s.inTx(ctx, "retire installed api keys", func(t *tx) error {
		locked, err := lockInstalled(ctx, t, installedAs, keep)
		if err != nil {
			return err
		}
		var kept store.APIKey
		retired = retired[:0]
		for _, k := range locked {
			if k.Hash == keep {
				kept = k
			} else {
				retired = append(retired, k)
			}
		}
		if kept.ID == "" {
			return fmt.Errorf("kept api key: %w", store.ErrNotFound)
		}
		if kept.InstalledAs != installedAs {
			if _, err := t.exec(ctx, `UPDATE api_keys SET installed_as = ? WHERE id = ?`, installedAs, kept.ID); err != nil {
				return err
			}
		}
		for _, k := range retired {
			if _, err := t.exec(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, micros(now), k.ID); err != nil {
				return err
			}
			if err := record(ctx, t, store.AuditRecord{At: now, Actor: a, Action: "apikey.revoke", Target: apiKeyTarget(k)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: retire installed api keys: %w", err)
	}
	return retired, nil
}

// lockInstalled locks and returns, in ID order, the live keys installed as
// installedAs and the live key with the hash keep.
func lockInstalled(ctx context.Context, t *tx, installedAs string, keep [32]byte) ([]store.APIKey, error) {
	rows, err := t.QueryContext(ctx, t.d.rebind(`SELECT `+apiKeyColumns+` FROM api_keys
		WHERE revoked_at IS NULL AND (installed_as = ? OR hash = ?) ORDER BY id`+t.d.lock()), installedAs, keep[:])
	return collect(rows, err, scanAPIKey)
}
