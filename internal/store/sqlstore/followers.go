package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// SaveFollowers implements store.Followers: one transaction, one statement
// for the node and one for the verifiers (a few on SQLite), then the read
// of the other nodes, so a node with thousands of verifiers costs the
// database a few statements a second. On Postgres it is one statement, the
// node and the verifiers written in data-modifying WITHs of the read:
// atomic as any statement, and one round trip where a transaction and a
// read take five (begin, a statement each, commit, the read), every second
// on every node.
func (s *Store) SaveFollowers(ctx context.Context, n store.NodeRecord, vs []store.VerifierRecord) ([]store.NodeRecord, error) {
	others, err := s.saveFollowers(ctx, n, vs)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: save followers: %w", err)
	}
	return others, nil
}

func (s *Store) saveFollowers(ctx context.Context, n store.NodeRecord, vs []store.VerifierRecord) ([]store.NodeRecord, error) {
	if s.d.WritableCTE && s.d.ArrayParams {
		q, args := `WITH n AS (`+nodeQuery+`) `+otherNodesQuery, append(nodeArgs(n), micros(n.UpdatedAt), n.ID)
		if len(vs) > 0 {
			// Without verifiers (an idle node's every flush) the statement
			// encodes and unnests no empty arrays.
			vq, vargs := s.verifiersSQL(vs)
			q, args = `WITH v AS (`+vq+`), n AS (`+nodeQuery+`) `+otherNodesQuery, append(vargs, args...)
		}
		return scanNodes(s.query(ctx, q, args...))
	}
	stmts, err := s.followerStatements(ctx, n, vs)
	if err != nil {
		return nil, err
	}
	var others []store.NodeRecord
	err = s.inTx(ctx, "save followers", func(t *tx) error {
		if _, err := t.execStatement(ctx, stmts[0]); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		for _, st := range stmts[1:] {
			if _, err := t.execStatement(ctx, st); err != nil {
				return fmt.Errorf("verifiers: %w", err)
			}
		}
		var err error
		if others, err = scanNodes(t.query(ctx, otherNodesQuery, micros(n.UpdatedAt), n.ID)); err != nil {
			return fmt.Errorf("other nodes: %w", err)
		}
		return nil
	})
	return others, err
}

// followerStatements returns the statements of SaveFollowers, prepared.
func (s *Store) followerStatements(ctx context.Context, n store.NodeRecord, vs []store.VerifierRecord) ([]statement, error) {
	node, err := s.prepare(ctx, nodeQuery, nodeArgs(n)...)
	if err != nil {
		return nil, err
	}
	out := []statement{node}
	for len(vs) > 0 {
		k := len(vs)
		if !s.d.ArrayParams {
			k = verifierChunk(k)
		}
		st, err := s.verifiersStatement(ctx, vs[:k])
		if err != nil {
			return nil, err
		}
		out = append(out, st)
		vs = vs[k:]
	}
	return out, nil
}

// nodeQuery upserts a node's record, unless a newer version is stored.
const nodeQuery = `INSERT INTO feed_nodes (id, url, safe, head, followers, version, updated_at, expires_at, advertise, stopped)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET url = excluded.url, safe = excluded.safe, head = excluded.head,
			followers = excluded.followers, version = excluded.version, updated_at = excluded.updated_at,
			expires_at = excluded.expires_at, advertise = excluded.advertise, stopped = excluded.stopped
		WHERE feed_nodes.version <= excluded.version`

func nodeArgs(n store.NodeRecord) []any {
	return []any{n.ID, n.URL, n.Safe, n.Head, n.Followers, n.Version, micros(n.UpdatedAt), micros(n.ExpiresAt),
		n.Advertise, boolInt(n.Stopped)}
}

// verifierChunks are the row counts of the statements that write verifier
// records on SQLite, largest first. A statement's text depends on its row
// count there (a VALUES list), and SQLite parses a statement on every run
// unless it is prepared: a node writes a varying number of records every
// second, so it writes them in chunks of these sizes, each statement
// prepared once (execPrepared). 256 rows are 2,304 parameters, well under
// SQLite's limit.
var verifierChunks = [...]int{256, 64, 16, 4, 1}

// verifierChunk returns the largest chunk size that n rows fill.
func verifierChunk(n int) int {
	for _, k := range verifierChunks {
		if n >= k {
			return k
		}
	}
	return n
}

// verifiersStatement upserts vs in one statement, whose text depends only
// on len(vs) (on Postgres not even on that: one array per column).
func (s *Store) verifiersStatement(ctx context.Context, vs []store.VerifierRecord) (statement, error) {
	q, args := s.verifiersSQL(vs)
	return s.prepare(ctx, q, args...)
}

// verifiersSQL is the statement that upserts vs, and its arguments.
func (s *Store) verifiersSQL(vs []store.VerifierRecord) (string, []any) {
	n := len(vs)
	ids, names, hosts, versions, nodes := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	pos, ready, stale, heard := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, v := range vs {
		ids[i], names[i], hosts[i], versions[i], nodes[i] = v.ID, v.Name, v.Host, v.Version, v.Node
		pos[i], ready[i], stale[i], heard[i] = v.Position, int64(boolInt(v.Ready)), v.StaleAfter.Microseconds(), micros(v.HeardAt)
	}
	from, args := s.d.from(newRows("v", n).text("id", ids).text("name", names).text("host", hosts).text("version", versions).
		text("node_id", nodes).ints("position", pos).ints("ready", ready).ints("stale_after", stale).ints("heard_at", heard))
	// WHERE true: SQLite would take ON CONFLICT for a join's ON otherwise.
	return `INSERT INTO feed_verifiers (id, name, host, version, node_id, position, ready, stale_after, heard_at)
		SELECT v.id, v.name, v.host, v.version, v.node_id, v.position, v.ready, v.stale_after, v.heard_at FROM ` + from + ` WHERE true
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, host = excluded.host,
		version = excluded.version, node_id = excluded.node_id, position = excluded.position,
		ready = excluded.ready, stale_after = excluded.stale_after, heard_at = excluded.heard_at
		WHERE feed_verifiers.heard_at <= excluded.heard_at`, args
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
	return scanNodes(s.query(ctx, `SELECT `+nodeColumns+` FROM feed_nodes WHERE expires_at > ? ORDER BY id`, micros(now)))
}

const nodeColumns = `id, url, safe, head, followers, version, updated_at, expires_at, advertise, stopped`

// otherNodesQuery reads the records of the nodes other than one, live at
// an instant (its arguments: the instant, the node's ID).
const otherNodesQuery = `SELECT ` + nodeColumns + ` FROM feed_nodes WHERE expires_at > ? AND id <> ? ORDER BY id`

// scanNodes reads node records from rows of nodeColumns and closes them.
func scanNodes(rows *sql.Rows, err error) ([]store.NodeRecord, error) {
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
