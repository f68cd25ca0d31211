package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// AddKey implements store.Keys.
func (s *Store) AddKey(ctx context.Context, k store.SigningKey, a store.Actor) error {
	return s.inTx(ctx, "add key", func(t *tx) error { return s.addKey(ctx, t, k, a) })
}

// AddFirstKey implements store.Keys. The count and the insert are one
// transaction under the dialect's KeyLock (SQLite: its single writer).
func (s *Store) AddFirstKey(ctx context.Context, k store.SigningKey, a store.Actor) (bool, error) {
	added := false
	err := s.inTx(ctx, "add first key", func(t *tx) error {
		if s.d.KeyLock != "" {
			if _, err := t.exec(ctx, s.d.KeyLock); err != nil {
				return err
			}
		}
		var n int64
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM signing_keys WHERE purpose = ?`, k.Purpose).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		added = true
		return s.addKey(ctx, t, k, a)
	})
	return added && err == nil, err
}

func (s *Store) addKey(ctx context.Context, t *tx, k store.SigningKey, a store.Actor) error {
	if _, err := t.exec(ctx, `INSERT INTO signing_keys
			(id, algorithm, public_key, private_enc, created_at, sign_from, retired_at, purpose)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, k.Public, k.PrivateEnc, micros(k.CreatedAt), micros(k.SignFrom),
		nullMicros(k.RetiredAt), k.Purpose); err != nil {
		return s.conflict(err)
	}
	if _, err := t.exec(ctx, `UPDATE signing_keys SET retired_at = ?
		WHERE id <> ? AND retired_at IS NULL AND purpose = ?`,
		micros(k.SignFrom), k.ID, k.Purpose); err != nil {
		return err
	}
	return record(ctx, t, store.AuditRecord{At: k.CreatedAt, Actor: a, Action: "key.add", Target: k.ID})
}

// ListKeys implements store.Keys.
func (s *Store) ListKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.query(ctx, `SELECT id, algorithm, public_key, private_enc, created_at, sign_from, retired_at, purpose
		FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list keys: %w", err)
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var (
			k                 store.SigningKey
			created, signFrom int64
			retired           sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Public, &k.PrivateEnc, &created, &signFrom, &retired, &k.Purpose); err != nil {
			return nil, fmt.Errorf("sqlstore: list keys: %w", err)
		}
		k.CreatedAt, k.SignFrom, k.RetiredAt = fromMicros(created), fromMicros(signFrom), fromNullMicros(retired)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list keys: %w", err)
	}
	return out, nil
}

// DeleteKeysRetiredBefore implements store.Keys.
func (s *Store) DeleteKeysRetiredBefore(ctx context.Context, t time.Time) (int64, error) {
	n, err := rowsAffected(s.exec(ctx, `DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?`, micros(t)))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete retired keys: %w", err)
	}
	return n, nil
}
