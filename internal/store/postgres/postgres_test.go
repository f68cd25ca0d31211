package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/sqlstore"
	"github.com/tegata-dev/tegata/internal/store/storetest"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// migrated hands each test a schema the embedded migrations have been
// applied to.
var migrated = pgtest.NewTemplate(func(ctx context.Context, dsn string) error {
	s, err := Open(ctx, dsn)
	if err != nil {
		return err
	}
	return s.Close()
})

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m))
}

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	return s
}

// openPair opens two stores on one schema, as two authority nodes would.
func openPair(t *testing.T) (*Store, *Store) {
	t.Helper()
	dsn := migrated.Schema(t)
	a, b := open(t, dsn), open(t, dsn)
	t.Cleanup(func() { _, _ = a.Close(), b.Close() })
	return a, b
}

func TestConformance(t *testing.T) {
	pgtest.DB(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, migrated.Schema(t)) })
}

// TestConformanceNodes: two stores on one schema, as two authority nodes.
func TestConformanceNodes(t *testing.T) {
	pgtest.DB(t)
	storetest.RunNodes(t, func(t *testing.T) []store.Store {
		dsn := migrated.Schema(t)
		return []store.Store{open(t, dsn), open(t, dsn)}
	})
}

func revokeSubject(t *testing.T, s store.Store) {
	t.Helper()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.RevokeSubject(context.Background(), store.SubjectRevocation{
		Subject: "alice", Now: now, ExpiresAt: now.Add(time.Hour),
	}); err != nil {
		t.Fatalf("RevokeSubject() = %v", err)
	}
}

// TestWakeAcrossNodes checks that an append by one node wakes the
// subscribers of another through LISTEN/NOTIFY.
func TestWakeAcrossNodes(t *testing.T) {
	a, b := openPair(t)
	wake, stop := b.Subscribe()
	defer stop()
	storetest.Drain(wake)
	revokeSubject(t, a)
	storetest.WaitWake(t, wake, "an append by the other node")
}

// TestHeardAcrossNodes: another node hears an append by its notification
// before its subscribers wake, and as asked when the appending caller
// waits for a confirmation.
func TestHeardAcrossNodes(t *testing.T) {
	a, b := openPair(t)
	wake, stop := b.Subscribe()
	defer stop()
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, confirm := range []bool{false, true, false} {
		_, askedBefore := b.Heard()
		storetest.Drain(wake)
		ctx := context.Background()
		if confirm {
			ctx = store.WithConfirmation(ctx)
		}
		e, err := a.RevokeSubject(ctx, store.SubjectRevocation{Subject: "alice", Now: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatalf("RevokeSubject() = %v", err)
		}
		storetest.WaitWake(t, wake, "an append by the other node")
		wantAsked := askedBefore
		if confirm {
			wantAsked = e.Seq
		}
		if head, asked := b.Heard(); head != e.Seq || asked != wantAsked {
			t.Errorf("confirm %v: Heard() on the other node after an append at %d = %d, %d; want %d, %d",
				confirm, e.Seq, head, asked, e.Seq, wantAsked)
		}
	}
}

// TestListenReconnects kills the LISTEN connection's backend: the listener
// must reconnect, wake subscribers for what it may have missed, and go on
// delivering later appends.
func TestListenReconnects(t *testing.T) {
	a, b := openPair(t)
	wake, stop := a.Subscribe()
	defer stop()
	old := a.listener.pid.Load()
	var ok bool
	if err := pgtest.DB(t).QueryRow("SELECT pg_terminate_backend($1)", int64(old)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v, want true", old, ok, err)
	}
	storetest.WaitWake(t, wake, "the listen connection was lost and restored")
	testtime.EventuallyTrue(t, storetest.WakeTimeout, fmt.Sprintf("the listener to leave backend %d", old),
		func() bool { return a.listener.pid.Load() != old })
	storetest.Drain(wake)
	revokeSubject(t, b)
	storetest.WaitWake(t, wake, "an append by the other node after reconnecting")
}

// TestReconnectHearsTheHead: appends committed while the listener was
// not listening sent notifications nobody got. Once it listens again, it
// hears the log's head, before it wakes subscribers: one that reads the
// log up to the head heard (feed.HubConfig.Heard) reads those appends
// too, instead of stopping at a head heard before the connection was lost
// and leaving them to its next read of the head.
func TestReconnectHearsTheHead(t *testing.T) {
	dsn := migrated.Schema(t)
	s := open(t, dsn)
	t.Cleanup(func() { _ = s.Close() })
	proxy, proxied := newBlockProxy(t, dsn)
	var mu sync.Mutex
	var heard int64
	woken := make(chan int64, 16) // the head heard when woken
	notified := func(head int64, _ bool) {
		mu.Lock()
		defer mu.Unlock()
		heard = max(heard, head)
	}
	wake := func() {
		mu.Lock()
		defer mu.Unlock()
		woken <- heard
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := listen(ctx, proxied, wake, notified, func(string) {}, s.Head)
	if err != nil {
		t.Fatalf("listen() = %v", err)
	}
	defer l.close()
	proxy.block() // the listener is cut off, and cannot listen again
	revokeSubject(t, s)
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	proxy.unblock()
	select {
	case got := <-woken:
		if got < head {
			t.Errorf("woken after reconnecting with head %d heard, want at least %d (appended while not listening)", got, head)
		}
	case <-time.After(testtime.Scale(storetest.WakeTimeout)):
		t.Fatal("not woken after the listener could reconnect")
	}
}

// TestListenIdlePing lets the listener time out and ping several times: the
// pings must succeed, on the same connection, which keeps delivering.
func TestListenIdlePing(t *testing.T) {
	const idle = 20 * time.Millisecond
	saved := idleTimeout
	idleTimeout = idle
	a, b := openPair(t)
	idleTimeout = saved
	wake, stop := a.Subscribe()
	defer stop()
	pid := a.listener.pid.Load()
	testtime.EventuallyTrue(t, storetest.WakeTimeout, "three idle pings", func() bool { return a.listener.pings.Load() >= 3 })
	storetest.Drain(wake)
	revokeSubject(t, b)
	storetest.WaitWake(t, wake, "an append by the other node after idle pings")
	if got := a.listener.pid.Load(); got != pid {
		t.Errorf("listener backend = %d, want %d (no reconnect while idle)", got, pid)
	}
}

// TestConcurrentOpen starts several nodes on an empty schema at once: the
// advisory lock makes them migrate one after the other.
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.Schema(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(context.Background(), dsn)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open() #%d = %v", i, err)
		}
	}
}

// TestMigrations runs storetest.Migrations on the embedded schema, each
// database a schema of its own.
func TestMigrations(t *testing.T) {
	sub, err := fs.Sub(schema, "schema")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Migrations(t, sub, func(t *testing.T) storetest.Database {
		dsn := pgtest.Schema(t)
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return storetest.Database{DB: db, Open: func(migrations fs.FS) (store.Store, error) {
			pool, err := sql.Open("pgx", dsn)
			if err != nil {
				return nil, err
			}
			d := dialect()
			d.Schema = migrations
			s, err := sqlstore.New(context.Background(), pool, pool, d)
			if err != nil {
				_ = pool.Close()
				return nil, err
			}
			return s, nil
		}}
	})
}

func TestWithSearchPath(t *testing.T) {
	tests := []struct {
		name, dsn, want string
	}{
		{"url", "postgres://u@h/db?sslmode=disable", "postgres://u@h/db?search_path=s&sslmode=disable"},
		{"key value", "host=h dbname=db", "host=h dbname=db search_path=s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pgtest.WithSearchPath(tt.dsn, "s"); got != tt.want {
				t.Errorf("WithSearchPath(%q) = %q, want %q", tt.dsn, got, tt.want)
			}
		})
	}
}

// TestOtherSchemaAppendIgnored: two clusters, each in a schema of its own
// on one database, share the NOTIFY channel; an append in one must reach
// the other's listener and wake none of its subscribers, while a node of
// the same cluster is still woken.
func TestOtherSchemaAppendIgnored(t *testing.T) {
	a, same := openPair(t)
	other := open(t, migrated.Schema(t))
	t.Cleanup(func() { _ = other.Close() })
	wake, stop := other.Subscribe()
	defer stop()
	sameWake, stopSame := same.Subscribe()
	defer stopSame()
	storetest.Drain(wake)
	storetest.Drain(sameWake)
	revokeSubject(t, a)
	storetest.WaitWake(t, sameWake, "an append by a node of the same cluster")
	testtime.EventuallyTrue(t, storetest.WakeTimeout, "the other cluster's listener to receive the append",
		func() bool { return other.listener.others.Load() >= 1 })
	select {
	case <-wake:
		t.Error("an append in another schema woke this cluster's subscribers")
	default:
	}
}

// TestNotice: what the listener does with each log notification payload.
func TestNotice(t *testing.T) {
	tests := []struct {
		name, schema, payload string
		want                  string
	}{
		{"this schema", "tegata_a", "7 tegata_a", "notified 7"},
		{"asked", "tegata_a", "ask:7 tegata_a", "notified 7, asked"},
		{"schema with a space", "my schema", "7 my schema", "notified 7"},
		{"asked, schema with a space", "my schema", "ask:7 my schema", "notified 7, asked"},
		{"other schema", "tegata_a", "7 tegata_b", "ignored"},
		{"asked in another schema", "tegata_a", "ask:7 tegata_b", "ignored"},
		{"no schema", "tegata_a", "7", "notified 7"},
		{"not a head", "tegata_a", "x", "woken"},
		{"asked, not a head", "tegata_a", "ask:x tegata_a", "woken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := "nothing"
			l := &listener{
				schema: tt.schema,
				wake:   func() { got = "woken" },
				notified: func(head int64, ask bool) {
					got = fmt.Sprint("notified ", head)
					if ask {
						got += ", asked"
					}
				},
			}
			l.notice(tt.payload)
			if tt.want == "ignored" {
				if got != "nothing" || l.others.Load() != 1 {
					t.Errorf("notice(%q) did %s, others = %d, want nothing and 1", tt.payload, got, l.others.Load())
				}
				return
			}
			if got != tt.want {
				t.Errorf("notice(%q) did %s, want %s", tt.payload, got, tt.want)
			}
		})
	}
}

// TestPooledConnectionPinged: a pooled connection unused for over
// pingIdle, whose backend the server ended meanwhile, is pinged, found
// closed and replaced: the statement that takes it still succeeds.
func TestPooledConnectionPinged(t *testing.T) {
	saved := pingIdle
	pingIdle = time.Millisecond
	s := open(t, migrated.Schema(t))
	pingIdle = saved
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	var pid int64
	if err := s.db.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	admin := pgtest.DB(t)
	var ok bool
	if err := admin.QueryRow("SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v, want true", pid, ok, err)
	}
	testtime.EventuallyTrue(t, storetest.WakeTimeout, fmt.Sprintf("backend %d to end", pid), func() bool {
		var n int
		return admin.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n) == nil && n == 0
	})
	if _, err := s.Head(ctx); err != nil {
		t.Errorf("Head() on a pool whose connection was closed = %v, want the pinged connection replaced", err)
	}
}
