// Package postgres is the shared store: store.Store on Postgres, for any
// number of authority nodes on one database. Queries run through pgx's
// database/sql driver; the schema is embedded and migrated at Open under an
// advisory lock, so nodes starting at once migrate one after the other.
//
// Every log append sends NOTIFY tegata_log in its transaction, and each Store
// keeps one connection LISTENing, so its subscribers wake whichever node
// appended. NOTIFY reaches every listener of the database, so the payload
// names the schema of the log too, and a Store ignores the appends of the
// clusters kept in other schemas. The same connection receives Broadcast messages (NOTIFY
// tegata_broadcast), which nodes use to tell each other how far their
// verifiers have got. That connection reconnects on its own and wakes
// subscribers (and hands listeners "") after reconnecting, since
// notifications sent meanwhile are lost.
//
// The DSN may set search_path (for example ?search_path=tegata) to keep the
// tables in their own schema, which must exist.
//
// A Store is safe for concurrent use by many goroutines and processes.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" database/sql driver

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/sqlstore"
)

//go:embed schema/*.sql
var schema embed.FS

// channel is the NOTIFY channel for log appends. The payload is the seq,
// a space and the schema the log is in (current_schema()): every cluster
// on the database shares the channel. The seq of an append whose caller
// waits for its confirmation (store.WithConfirmation) has askPrefix: the
// schema, which may hold spaces, stays everything after the first.
const channel = "tegata_log"

// askPrefix begins the payload of an append whose caller waits for its
// confirmation.
const askPrefix = "ask:"

// broadcastChannel carries Broadcast messages between nodes.
const broadcastChannel = "tegata_broadcast"

// Pool settings: enough connections for a busy authority node without
// exhausting a shared server's max_connections across several nodes.
//
// A connection taken from the pool after pingIdle unused is pinged first,
// so that one the server closed meanwhile (a restart, a failover) is
// replaced instead of failing its statement. pgx pings after a second;
// but a node's once-a-second work (the hub's read of the log head, the
// record flush) takes a connection about every second, so every such
// statement was preceded by a ping, a round trip of its own. At 2 s those
// connections are not pinged: should one have been closed, that work fails
// once and is done again a second later; the others are pinged as before.
// A node's API calls on a quiet node take the connection the periodic work
// returned last, unpinged either way.
const (
	maxOpenConns    = 16
	maxIdleConns    = 8
	connMaxIdleTime = 5 * time.Minute
	connMaxLifetime = time.Hour
)

// pingIdle: see above. Open copies it; tests shorten it before Open.
var pingIdle = 2 * time.Second

// Store is store.Store and store.Notifier on Postgres.
type Store struct {
	*sqlstore.Store
	db       *sql.DB // the pool, for Broadcast
	listener *listener
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Notifier    = (*Store)(nil)
	_ store.Broadcaster = (*Store)(nil)
)

// Open connects to the database at dsn (a postgres:// URL or key=value
// string, as pgx accepts), migrates the schema and starts listening for log
// appends.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	idle := pingIdle
	db := stdlib.OpenDB(*cfg, stdlib.OptionShouldPing(func(_ context.Context, p stdlib.ShouldPingParams) bool {
		return p.IdleDuration > idle
	}))
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxIdleConns)
	db.SetConnMaxIdleTime(connMaxIdleTime)
	db.SetConnMaxLifetime(connMaxLifetime)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s, err := sqlstore.New(ctx, db, db, dialect())
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	l, err := listen(ctx, dsn, s.Wake, s.Notified, s.Deliver, s.Head)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &Store{Store: s, db: db, listener: l}, nil
}

// Close stops listening and closes the pool.
func (s *Store) Close() error {
	s.listener.close()
	return s.Store.Close()
}

func dialect() sqlstore.Dialect {
	sub, err := fs.Sub(schema, "schema")
	if err != nil {
		panic(err) // the embedded directory is known to exist
	}
	return sqlstore.Dialect{
		Name:               "postgres",
		DollarPlaceholders: true,
		ArrayParams:        true,
		ForUpdate:          "FOR UPDATE",
		WritableCTE:        true,
		ByteOrder:          ` COLLATE "C"`,
		// A transaction-level advisory lock, released at commit, keyed by
		// schema so that separate schemas migrate independently.
		MigrationLock: `SELECT pg_advisory_xact_lock(hashtext('tegata.migrate.' || COALESCE(current_schema(), '')))`,
		KeyLock:       `SELECT pg_advisory_xact_lock(hashtext('tegata.first-key.' || COALESCE(current_schema(), '')))`,
		Schema:        sub,
		IsUnique:      isUnique,
		Unwritable:    unwritable,
		NotifyAppend:  "pg_notify('" + channel + "', CAST(seq AS TEXT) || ' ' || " + schemaExpr + ")",
		NotifyAsk:     "pg_notify('" + channel + "', '" + askPrefix + "' || CAST(seq AS TEXT) || ' ' || " + schemaExpr + ")",
		HomeQuery:     `SELECT CAST(tableoid AS TEXT) || ':' || CAST(xmin AS TEXT) FROM cluster_home WHERE id = 1`,
	}
}

// schemaExpr is the schema the tables are in, as NOTIFY payloads name it
// and the listener compares it.
const schemaExpr = "COALESCE(current_schema(), '')"

// Broadcast implements store.Broadcaster with NOTIFY, which every node's
// listener (this one's included) receives. Outside a transaction it is
// sent at once.
//
// Postgres commits the transactions that NOTIFY one at a time, across
// every database of the server, holding a lock until the commit has been
// flushed to disk; the log's appends, which NOTIFY too, wait in that
// line. A message is lost anyway when its listener is disconnected, so
// its transaction does not wait for the flush (synchronous_commit off,
// for this transaction only): it holds the line for the commit alone.
func (s *Store) Broadcast(ctx context.Context, msg string) error {
	if len(msg) > store.MaxBroadcast {
		return fmt.Errorf("postgres: broadcast: message of %d bytes (at most %d)", len(msg), store.MaxBroadcast)
	}
	const notify = `SELECT pg_notify($1, $2) FROM (SELECT set_config('synchronous_commit', 'off', true)) AS unflushed`
	if _, err := s.db.ExecContext(ctx, notify, broadcastChannel, msg); err != nil {
		return fmt.Errorf("postgres: broadcast: %w", err)
	}
	return nil
}

// uniqueViolation is the SQLSTATE of a unique or primary key violation.
const uniqueViolation = "23505"

// unwritable: the server is out of disk (53100), writes go to a read-only
// transaction or server (25006: a standby, default_transaction_read_only),
// or a file could not be written (58030).
func unwritable(err error) bool {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case "53100", "25006", "58030":
		return true
	}
	return false
}

func isUnique(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == uniqueViolation
}
