package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// idleTimeout is how long the listener waits for a notification before it
// pings, so that a dead connection (a failover, a silent network drop) is
// noticed within seconds rather than at the next TCP timeout. Each listener
// copies it when it starts; tests shorten it before Open.
var idleTimeout = 5 * time.Second

// Listener timing. It is the connection's, on the wall clock as network
// deadlines are (package clock): the store has no clock (store.Store).
const (
	pingTimeout    = 5 * time.Second
	connectTimeout = 10 * time.Second
	minBackoff     = 100 * time.Millisecond
	maxBackoff     = 10 * time.Second
)

// listener owns the connection that LISTENs on channel. One goroutine uses
// it; close stops that goroutine.
type listener struct {
	dsn  string
	wake func()
	// notified receives the head each log notification names, and
	// whether its caller waits for a confirmation.
	notified func(head int64, ask bool)
	// deliver receives broadcast messages, and "" after a reconnect.
	deliver func(string)
	// head reads the log's head, which each connection hands to notified
	// once it listens (see connect).
	head func(context.Context) (int64, error)
	idle time.Duration // idleTimeout when the listener started
	// schema is the one this store's tables are in, which the log
	// notifications of this cluster name; set by connect.
	schema string
	// pid is the backend of the current connection, for tests that kill it;
	// pings counts the idle pings that succeeded, for tests that wait for
	// them; others counts the log notifications of other schemas ignored.
	pid       atomic.Uint32
	pings     atomic.Int64
	others    atomic.Int64
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// listen connects and LISTENs before returning, so an append committed
// after Open returns is never missed, then follows notifications until
// close.
func listen(ctx context.Context, dsn string, wake func(), notified func(int64, bool), deliver func(string),
	head func(context.Context) (int64, error)) (*listener, error) {
	l := &listener{dsn: dsn, wake: wake, notified: notified, deliver: deliver, head: head, idle: idleTimeout, done: make(chan struct{})}
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(runCtx, conn)
	return l, nil
}

func (l *listener) close() {
	l.closeOnce.Do(func() {
		l.cancel()
		<-l.done
	})
}

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, l.dsn)
	if err != nil {
		return nil, fmt.Errorf("listen: connect: %w", err)
	}
	for _, ch := range []string{channel, broadcastChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			closeConn(conn)
			return nil, fmt.Errorf("listen: %w", err)
		}
	}
	if err := conn.QueryRow(ctx, "SELECT "+schemaExpr).Scan(&l.schema); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("listen: schema: %w", err)
	}
	// Appends committed before the LISTEN sent notifications this
	// connection never gets: the head read after it stands for them, so
	// that what the store has heard (store.Notifier.Heard) covers every
	// append up to it. A subscriber that reads the log up to a head heard
	// would otherwise stop short of them until it read the head itself.
	head, err := l.head(ctx)
	if err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("listen: %w", err)
	}
	l.pid.Store(conn.PgConn().PID())
	l.notified(head, false)
	return conn, nil
}

// run follows notifications on conn, replacing it whenever it fails.
func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	for {
		err := l.follow(ctx, conn)
		closeConn(conn)
		if ctx.Err() != nil {
			return
		}
		slog.Warn("postgres: listen connection lost, reconnecting", "err", err)
		if conn = l.reconnect(ctx); conn == nil {
			return
		}
		slog.Info("postgres: listen connection restored")
		// Appends made while disconnected sent notifications nobody got:
		// connect heard the head, and the wake reads the log up to it.
		l.wake()
		l.deliver("")
	}
}

// follow wakes subscribers on each notification until conn fails or ctx
// ends, pinging whenever it is idle.
func (l *listener) follow(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, l.idle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil && n.Channel == broadcastChannel:
			l.deliver(n.Payload)
			continue
		case err == nil:
			l.notice(n.Payload)
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !pgconn.Timeout(err):
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		l.pings.Add(1)
	}
}

// notice hands on a log notification, whose payload is the head (after
// askPrefix when the append's caller waits for its confirmation) and the
// schema of the log it heads. Another schema's is another cluster's
// append, which this store's subscribers need not read their log for; a
// payload that names no schema is taken as this cluster's.
func (l *listener) notice(payload string) {
	seq, schema, named := strings.Cut(payload, " ")
	if named && schema != l.schema {
		l.others.Add(1)
		return
	}
	seq, ask := strings.CutPrefix(seq, askPrefix)
	head, err := strconv.ParseInt(seq, 10, 64)
	if err != nil {
		l.wake() // not a head after all: wake, which is always safe
		return
	}
	l.notified(head, ask)
}

// reconnect tries to connect with exponential backoff until it succeeds or
// ctx ends (then it returns nil).
func (l *listener) reconnect(ctx context.Context) *pgx.Conn {
	backoff := minBackoff
	for {
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		conn, err := l.connect(cctx)
		cancel()
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		slog.Warn("postgres: listen reconnect failed", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
