package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// verifierBatch caps the rows of one INSERT, well under both databases'
// limits on bound parameters (9 per row).
const verifierBatch = 500

// SaveFollowers implements store.Followers: one transaction, one statement
// for the node and one per verifierBatch verifiers, so a node with
// thousands of verifiers costs the database a few statements a second.
func (s *Store) SaveFollowers(ctx context.Context, n store.NodeRecord, vs []store.VerifierRecord) error {
	return s.inTx(ctx, "save followers", func(t *tx) error {
		if _, err := t.exec(ctx, `INSERT INTO feed_nodes (id, url, safe, head, followers, version, updated_at, expires_at, advertise, stopped)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET url = excluded.url, safe = excluded.safe, head = excluded.head,
				followers = excluded.followers, version = excluded.version, updated_at = excluded.updated_at,
				expires_at = excluded.expires_at, advertise = excluded.advertise, stopped = excluded.stopped
			WHERE feed_nodes.version <= excluded.version`,
			n.ID, n.URL, n.Safe, n.Head, n.Followers, n.Version, micros(n.UpdatedAt), micros(n.ExpiresAt),
			n.Advertise, boolInt(n.Stopped)); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		for len(vs) > 0 {
			k := min(len(vs), verifierBatch)
			if err := saveVerifiers(ctx, t, vs[:k]); err != nil {
				return err
			}
			vs = vs[k:]
		}
		return nil
	})
}

func saveVerifiers(ctx context.Context, t *tx, vs []store.VerifierRecord) error {
	var q strings.Builder
	q.WriteString(`INSERT INTO feed_verifiers (id, name, host, version, node_id, position, ready, stale_after, heard_at) VALUES `)
	args := make([]any, 0, 9*len(vs))
	for i, v := range vs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, v.ID, v.Name, v.Host, v.Version, v.Node, v.Position, boolInt(v.Ready),
			v.StaleAfter.Microseconds(), micros(v.HeardAt))
	}
	q.WriteString(` ON CONFLICT (id) DO UPDATE SET name = excluded.name, host = excluded.host,
		version = excluded.version, node_id = excluded.node_id, position = excluded.position,
		ready = excluded.ready, stale_after = excluded.stale_after, heard_at = excluded.heard_at
		WHERE feed_verifiers.heard_at <= excluded.heard_at`)
	if _, err := t.exec(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("verifiers: %w", err)
	}
	return nil
}

// FeedNodes implements store.Followers.
func (s *Store) FeedNodes(ctx context.Context, now time.Time) ([]store.NodeRecord, error) {
	out, err := s.feedNodes(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: feed nodes: %w", err)
	}
	return out, nil
}

func (s *Store) feedNodes(ctx context.Context, now time.Time) ([]store.NodeRecord, error) {
	rows, err := s.query(ctx, `SELECT id, url, safe, head, followers, version, updated_at, expires_at, advertise, stopped
		FROM feed_nodes WHERE expires_at > ? ORDER BY id`, micros(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.NodeRecord
	for rows.Next() {
		var (
			n                         store.NodeRecord
			updated, expires, stopped int64
		)
		if err := rows.Scan(&n.ID, &n.URL, &n.Safe, &n.Head, &n.Followers, &n.Version, &updated, &expires,
			&n.Advertise, &stopped); err != nil {
			return nil, err
		}
		n.UpdatedAt, n.ExpiresAt, n.Stopped = fromMicros(updated), fromMicros(expires), stopped != 0
		out = append(out, n)
	}
	return out, rows.Err()
}

// FeedVerifiers implements store.Followers.
func (s *Store) FeedVerifiers(ctx context.Context, heardAfter time.Time) ([]store.VerifierRecord, error) {
	out, err := s.feedVerifiers(ctx, heardAfter)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: feed verifiers: %w", err)
	}
	return out, nil
}

func (s *Store) feedVerifiers(ctx context.Context, heardAfter time.Time) ([]store.VerifierRecord, error) {
	rows, err := s.query(ctx, `SELECT id, name, host, version, node_id, position, ready, stale_after, heard_at
		FROM feed_verifiers WHERE heard_at > ? ORDER BY id`, micros(heardAfter))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.VerifierRecord
	for rows.Next() {
		var (
			v                 store.VerifierRecord
			ready, stale, hrd int64
		)
		if err := rows.Scan(&v.ID, &v.Name, &v.Host, &v.Version, &v.Node, &v.Position, &ready, &stale, &hrd); err != nil {
			return nil, err
		}
		v.Ready, v.StaleAfter, v.HeardAt = ready != 0, time.Duration(stale)*time.Microsecond, fromMicros(hrd)
		out = append(out, v)
	}
	return out, rows.Err()
}

// PruneFollowers implements store.Followers.
func (s *Store) PruneFollowers(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	err := s.inTx(ctx, "prune followers", func(tx *tx) error {
		for _, q := range []string{
			`DELETE FROM feed_nodes WHERE expires_at < ?`,
			`DELETE FROM feed_verifiers WHERE heard_at < ?`,
		} {
			n, err := rowsAffected(tx.exec(ctx, q, micros(t)))
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return total, err
}

// boolInt is b as both databases' integer columns hold it.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
