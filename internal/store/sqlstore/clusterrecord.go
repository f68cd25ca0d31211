package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/tegata-dev/tegata/internal/store"
)

// Home implements store.ClusterRecord.
func (s *Store) Home(ctx context.Context) (string, error) {
	if s.d.HomeQuery == "" {
		return "", nil
	}
	var home string
	if err := s.w.QueryRowContext(ctx, s.d.HomeQuery).Scan(&home); err != nil {
		return "", fmt.Errorf("sqlstore: database identity: %w", err)
	}
	return home, nil
}

// RecordCluster implements store.ClusterRecord.
func (s *Store) RecordCluster(ctx context.Context, epoch, home string, settings map[string]string) (store.ClusterInfo, error) {
	text, err := settingsText(settings)
	if err != nil {
		return store.ClusterInfo{}, fmt.Errorf("sqlstore: record cluster: %w", err)
	}
	var out store.ClusterInfo
	err = s.inTx(ctx, "record cluster", func(t *tx) error {
		if home != "" {
			if _, err := t.exec(ctx, `UPDATE cluster SET home = ? WHERE id = 1 AND epoch = ?`, home, epoch); err != nil {
				return err
			}
		}
		if settings != nil {
			if _, err := t.exec(ctx, `UPDATE cluster SET settings = ? WHERE id = 1 AND epoch = ?`, text, epoch); err != nil {
				return err
			}
		}
		out, err = readCluster(ctx, t)
		return err
	})
	return out, err
}

// ResetAfterRestore implements store.ClusterRecord.
func (s *Store) ResetAfterRestore(ctx context.Context, r store.RestoreReset) (store.ClusterInfo, store.RestoreOutcome, error) {
	if r.Epoch == "" {
		return store.ClusterInfo{}, store.RestoreOutcome{}, fmt.Errorf("sqlstore: reset after restore: the new epoch is required")
	}
	var out store.ClusterInfo
	var did store.RestoreOutcome
	err := s.inTx(ctx, "reset after restore", func(t *tx) error {
		did = store.RestoreOutcome{}
		applied, err := renewEpoch(ctx, t, r.OldEpoch, r.Epoch)
		if err != nil {
			return err
		}
		if applied {
			if did, err = s.reset(ctx, t, r); err != nil {
				return err
			}
		}
		out, err = readCluster(ctx, t)
		return err
	})
	return out, did, err
}

// reset is ResetAfterRestore's work once the epoch is renewed.
func (s *Store) reset(ctx context.Context, t *tx, r store.RestoreReset) (store.RestoreOutcome, error) {
	did := store.RestoreOutcome{Applied: true}
	if _, err := t.exec(ctx, `UPDATE cluster SET home = ?, restored_at = ? WHERE id = 1`, r.Home, micros(r.Now)); err != nil {
		return did, err
	}
	if !r.Cutoff {
		return did, record(ctx, t, store.AuditRecord{At: r.Now, Actor: r.Actor, Action: "cluster.restore", Target: "epoch " + r.Epoch})
	}
	var err error
	if did.Sessions, err = rowsAffected(t.exec(ctx, `UPDATE sessions SET revoked_at = ? WHERE revoked_at IS NULL`, micros(r.Now))); err != nil {
		return did, err
	}
	if did.Keys, err = rowsAffected(t.exec(ctx, `DELETE FROM signing_keys WHERE purpose = ''`)); err != nil {
		return did, err
	}
	if did.APIKeys, err = s.revokeAllBut(ctx, t, r); err != nil {
		return did, err
	}
	target := fmt.Sprintf("epoch %s: %d sessions, %d signing keys, %d API keys", r.Epoch, did.Sessions, did.Keys, len(did.APIKeys))
	return did, record(ctx, t, store.AuditRecord{At: r.Now, Actor: r.Actor, Action: "cluster.restore", Target: target})
}

// revokeAllBut revokes the live API keys whose hash is not in r.Keep.
func (s *Store) revokeAllBut(ctx context.Context, t *tx, r store.RestoreReset) ([]store.APIKey, error) {
	rows, err := t.query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	var gone []store.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		if !slices.Contains(r.Keep, k.Hash) {
			gone = append(gone, k)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, k := range gone {
		if _, err := t.exec(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, micros(r.Now), k.ID); err != nil {
			return nil, err
		}
		if err := record(ctx, t, store.AuditRecord{At: r.Now, Actor: r.Actor, Action: "apikey.revoke", Target: apiKeyTarget(k)}); err != nil {
			return nil, err
		}
	}
	return gone, nil
}

// settingsText is how settings are stored: a JSON object, or "" for none.
func settingsText(settings map[string]string) (string, error) {
	if settings == nil {
		return "", nil
	}
	b, err := json.Marshal(settings)
	return string(b), err
}

// sealedTables says where each kind of sealed value lives.
var sealedTables = map[string]struct{ table, column string }{
	store.SealedSigningKey: {"signing_keys", "private_enc"},
	store.SealedStreamAuth: {"ssf_streams", "auth_header"},
}

// SealedValues implements store.ClusterRecord.
func (s *Store) SealedValues(ctx context.Context) ([]store.SealedValue, error) {
	var out []store.SealedValue
	for _, kind := range []string{store.SealedSigningKey, store.SealedStreamAuth} {
		w := sealedTables[kind]
		rows, err := s.query(ctx, `SELECT id, `+w.column+` FROM `+w.table+` WHERE `+w.column+` IS NOT NULL ORDER BY id`)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: sealed values: %w", err)
		}
		for rows.Next() {
			v := store.SealedValue{Kind: kind}
			if err := rows.Scan(&v.ID, &v.Sealed); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlstore: sealed values: %w", err)
			}
			if len(v.Sealed) > 0 {
				out = append(out, v)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlstore: sealed values: %w", err)
		}
	}
	return out, nil
}

// Reseal implements store.ClusterRecord.
func (s *Store) Reseal(ctx context.Context, vs []store.SealedValue) (int64, error) {
	var n int64
	err := s.inTx(ctx, "reseal", func(t *tx) error {
		n = 0
		for _, v := range vs {
			w, ok := sealedTables[v.Kind]
			if !ok {
				return fmt.Errorf("unknown sealed value kind %q", v.Kind)
			}
			c, err := rowsAffected(t.exec(ctx, `UPDATE `+w.table+` SET `+w.column+` = ? WHERE id = ? AND `+w.column+` = ?`, v.New, v.ID, v.Sealed))
			if err != nil {
				return err
			}
			n += c
		}
		return nil
	})
	return n, err
}
