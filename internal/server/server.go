package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/buildinfo"
	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/inforce"
	"github.com/tegata-dev/tegata/internal/ssf"
	"github.com/tegata-dev/tegata/internal/statuslist"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/postgres"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
)

// Defaults of Config, exported so that the command line shows and applies
// the same values.
const (
	DefaultAddr    = "127.0.0.1:8080"
	DefaultDataDir = "tegata-data"
)

// Config is what `tegata serve` is told.
type Config struct {
	Addr    string // listen address; default DefaultAddr
	DataDir string // default DefaultDataDir
	// DB is a Postgres URL (postgres://...); empty means embedded SQLite at
	// <DataDir>/tegata.db.
	DB string
	// SQLiteMaxSize caps the embedded database file, in bytes: past it
	// writes are refused and the node answers not ready, as on a full
	// disk, leaving the rest of the disk to others. Zero: no cap.
	SQLiteMaxSize int64
	// Issuer is the iss of every token. The first node to start on a
	// database records it (default http://<Addr>); a node started without
	// one uses the recorded one, a node given another refuses to start.
	Issuer string
	// MasterKey and APIKey are the values of TEGATA_MASTER_KEY and
	// TEGATA_API_KEY; empty means the files under DataDir. FeedKey
	// (TEGATA_FEED_KEY) optionally installs a read-only feed key.
	MasterKey, APIKey, FeedKey string
	// MasterKeyOther (TEGATA_MASTER_KEY_OTHER) is a second master key that
	// opens what is sealed at rest but never seals, during a master key
	// rotation (docs/operations.md); given it, the node re-seals under
	// MasterKey what it sealed.
	MasterKeyOther string
	Authority      authority.Config
	// Limits caps request rates; nil means httpapi.DefaultLimits().
	Limits *httpapi.Limits
	// MaxConfirm caps ?confirm= on revocations. Default 30s.
	MaxConfirm time.Duration
	// SSFInsecurePush lets Shared Signals push streams use http:// and
	// loopback or private addresses (tegata serve --ssf-insecure-push):
	// for development and tests only.
	SSFInsecurePush bool
	// FeedMaxAge ends feed streams after about this long (verifiers
	// reconnect); zero means httpapi.DefaultFeedMaxAge, negative none.
	FeedMaxAge time.Duration
	// NewEpoch gives the cluster a new epoch at start (tegata serve
	// --new-epoch), so that every verifier starts over from the log's
	// beginning: the step after restoring the database from a backup. It
	// refuses while another node's record is live.
	NewEpoch bool
	// AfterRestore is what a node does when it finds at start that the
	// database was restored from a backup: AfterRestoreCutoff (the
	// default, "") or AfterRestoreKeep.
	AfterRestore string
	// Restored says the database was restored from an older copy: the
	// AfterRestore policy applies even when nothing at start shows it
	// (tegata serve --restored). It refuses while another node's record is
	// live, as NewEpoch does.
	Restored bool
	// ReplaceKeys installs APIKey and FeedKey even when they differ from
	// the keys the cluster was given, and revokes those (tegata serve
	// --replace-keys): after a leak. Without it a node whose key differs
	// refuses to start, and no node ever retires a key on its own.
	ReplaceKeys bool
	// UpdateSettings makes this node's settings the cluster's (tegata
	// serve --update-settings). Without it a node whose settings differ
	// from the ones recorded for the cluster (audience, algorithm,
	// lifetimes, status lists: authority.Config.SharedSettings) refuses to
	// start, naming them.
	UpdateSettings bool
	// TLSCert and TLSKey, PEM files, make the API listener serve HTTPS
	// (the metrics listener stays plain HTTP). Both or neither.
	TLSCert, TLSKey string
	// tls is what Start made of them.
	tls *tls.Config
	// NoConsole turns the operator console off (tegata serve
	// --console=false); by default it is served at /console/.
	NoConsole bool
	// ConsoleAddr, when set, serves the console there and not on Addr, so
	// that operators can keep it off the public listener. It is served
	// with the same TLS as Addr.
	ConsoleAddr string
	// ConsoleIdleTimeout ends a console session after this long without a
	// request. Zero: console.DefaultIdleTimeout.
	ConsoleIdleTimeout time.Duration
	// AdvertiseURL is the URL verifiers may follow this node at (tegata
	// serve --advertise-url): published on the feed with the other nodes'
	// as the cluster's membership, so that verifiers follow nodes started
	// after them. Empty: this node is not advertised (verifiers reach it
	// only if configured with it).
	AdvertiseURL string
	// MetricsAddr, when set, serves /metrics there and not on Addr, so
	// that a balancer exposing Addr does not expose the metrics.
	MetricsAddr string
	// Pprof serves Go's profiles (net/http/pprof, under /debug/pprof/) on
	// MetricsAddr, which it requires: they show the node's internals and
	// cost CPU while taken, so they never go on the public listener.
	Pprof bool
	// MaxStaleAfter is the longest staleness bound this node takes a
	// verifier at (feed.HubConfig.StaleAfterCap): no lease it grants, and
	// no wait for a silent verifier, lasts longer. Zero means
	// feed.DefaultStaleAfterCap.
	MaxStaleAfter time.Duration
	// Clock is the node's one clock: the authority's decisions and every
	// timer of the node (feed heartbeats and streams' key checks and
	// maximum age, record flushes, confirmation waits, the restore
	// witness, event stream deliveries). A stopped test clock holds them
	// until the test moves it; testtime.Running also moves by itself. Nil:
	// the wall clock. Authority.Clock must be nil (Start refuses another
	// clock).
	Clock clock.Clock
	// BodyTimeout bounds how long a request body may take to arrive (a
	// connection deadline, on the wall clock). Zero:
	// httpguard.BodyTimeout.
	BodyTimeout time.Duration
	Logger      *slog.Logger
}

// Running is a started authority.
type Running struct {
	URL string // http://host:port actually listened on
	// ConsoleURL is where the console is served (…/console/), empty when
	// it is off.
	ConsoleURL string
	// MetricsURL is where /metrics is served when Config.MetricsAddr is
	// set, else empty (it is under URL).
	MetricsURL string
	APIKey     string // the bootstrap admin key (for tests and the CLI)
	Authority  *authority.Authority
	Store      store.Store

	srv *http.Server
	// stopFeed ends the feed hub and with it every feed stream; the HTTP
	// server calls it as Shutdown begins, since streams never finish on
	// their own.
	stopFeed context.CancelFunc
	// stopBackground ends the authority's log follower once requests have
	// drained, so they see other nodes' revocations until the end.
	stopBackground context.CancelFunc
	// cancelRequests cancels in-flight requests: only once the drain
	// deadline has passed, so a request under way completes.
	cancelRequests context.CancelFunc
	wg             sync.WaitGroup
	log            *slog.Logger
	data           *dataDir // nil when the data directory is not used
	metrics        *metricsListener
	console        *http.Server // the console's own listener, if any
	// witness notes the log's head in the data directory (restore.go).
	witness func()
	// markStopped writes this node's record marked stopped, once it serves
	// nobody.
	markStopped func()
}

// Start prepares everything and begins serving; Shutdown stops it.
//
// Nothing is created on disk before the configuration has been checked and
// the address is listened on, and a start that fails removes what it
// created. The data directory is used only when something lives there: the
// SQLite database (locked against a second process), or a secret not given
// in the environment.
func Start(ctx context.Context, cfg Config) (*Running, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	env, err := checkConfig(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.tls, err = loadTLS(cfg); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	url := "http://" + ln.Addr().String()
	if cfg.tls != nil {
		url = "https://" + ln.Addr().String()
	}
	warnUnreachableIssuer(cfg, ln.Addr(), url)
	r, err := startOn(ctx, cfg, env, url, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return r, nil
}

// startOn opens the data directory (when needed), the secrets and the
// store, then starts serving on ln. On failure it undoes what it did.
func startOn(ctx context.Context, cfg Config, env envSecrets, url string, ln net.Listener) (r *Running, err error) {
	log, pg := cfg.Logger, isPostgres(cfg.DB)
	var dd *dataDir
	if !pg || env.master == nil || env.admin == "" {
		if dd, err = openDataDir(cfg.DataDir, !pg, log); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				dd.fail()
			}
		}()
	}
	master, err := masterKey(env, dd, log)
	if err != nil {
		return nil, err
	}
	adminKey, err := apiKey(env, dd, log)
	if err != nil {
		return nil, err
	}
	if !pg {
		if err := dd.sqliteFiles(sqliteFile); err != nil {
			return nil, err
		}
	}
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	cfg.FeedKey = env.feed
	wit := newWitness(dd)
	if r, err = start(ctx, cfg, st, master, env.otherMaster, adminKey, url, ln, wit); err != nil {
		st.Close()
		return nil, err
	}
	r.data = dd
	return r, nil
}

func start(ctx context.Context, cfg Config, st store.Store, master, otherMaster []byte, adminKey, url string, ln net.Listener, wit *witness) (*Running, error) {
	log := cfg.Logger
	clk := clock.Or(cfg.Clock)
	a, id, err := startAuthority(ctx, cfg, clk, st, master, otherMaster, adminKey, url, wit)
	if err != nil {
		return nil, err
	}
	limits := httpapi.DefaultLimits()
	if cfg.Limits != nil {
		limits = *cfg.Limits
	}
	license := new(inforce.License)
	hub := newHub(cfg, a, st, id, limits, license)
	cl := inforce.New(inforce.Config{URL: url, Advertise: strings.TrimRight(cfg.AdvertiseURL, "/"), Members: hub.SetNodes,
		Epoch: id.Epoch, Hub: hub, Store: st, License: license,
		Broadcaster: broadcaster(st), Clock: clk, Logger: log})
	if err := cl.Register(ctx); err != nil {
		return nil, fmt.Errorf("register this node: %w", err)
	}
	bg, stopBackground := context.WithCancel(context.Background())
	feedCtx, stopFeed := context.WithCancel(context.Background())
	tx := ssf.New(st, a, ssf.Config{Issuer: id.Issuer, InsecurePush: cfg.SSFInsecurePush, Clock: clk, Logger: log})
	h, metrics, err := newAPI(cfg, clk, a, st, id, hub, cl, tx, limits, feedCtx)
	var ml *metricsListener
	var cs *consoleServer
	if err == nil {
		cs, err = newConsole(cfg, clk, a, st, id, cl, tx, limits, url)
	}
	if err == nil {
		ml, err = listenMetrics(cfg.MetricsAddr, metrics, cfg.Pprof)
	}
	if err != nil && cs != nil {
		cs.close()
	}
	if err != nil {
		stopBackground()
		stopFeed()
		return nil, err
	}
	reqs, cancelRequests := context.WithCancel(context.Background())
	r := &Running{URL: url, APIKey: adminKey, Authority: a, Store: st, log: log,
		stopFeed: stopFeed, stopBackground: stopBackground, cancelRequests: cancelRequests,
		srv: &http.Server{Handler: cs.mount(h), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
			BaseContext: func(net.Listener) context.Context { return reqs }}}
	r.srv.RegisterOnShutdown(stopFeed)
	r.ConsoleURL = cs.url
	if cs.srv != nil {
		r.console = cs.srv
		r.goRun(func() { cs.serve(log) })
	}
	if ml != nil {
		r.metrics, r.MetricsURL = ml, ml.url
		r.goRun(func() { ml.serve(log) })
	}
	r.goRunLogged(bg, "authority background work", a.Run)
	r.goRunLogged(feedCtx, "feed hub", hub.Run)
	r.goRunLogged(bg, "cluster membership", cl.Run)
	r.goRunLogged(bg, "shared signals transmitter", func(ctx context.Context) error { return tx.Run(ctx, st) })
	if cs.h != nil {
		r.goRunLogged(bg, "console idle sweep", func(ctx context.Context) error { return cs.h.Run(ctx, clk) })
	}
	wit.note(ctx, st, id.Epoch, log)
	r.witness = func() { wit.note(context.Background(), st, id.Epoch, log) }
	r.markStopped = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := cl.MarkStopped(ctx); err != nil {
			log.Warn("could not mark this node's record stopped: a node started with --new-epoch or --restored waits for it to lapse",
				"err", err)
		}
	}
	r.goRun(func() { wit.run(bg, clk, st, id.Epoch, log) })
	r.goRun(func() {
		// Proxies that carry many clients' connections are not capped.
		capped := tlsListener(httpguard.Listener(ln, limits.ConnsPerAddress, limits.TrustedProxies, log), cfg.tls)
		if err := r.srv.Serve(capped); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	})
	log.Info("listening", "url", url, "issuer", id.Issuer, "node", cl.NodeID(), "service", "tegata authority")
	return r, nil
}

// startAuthority settles the cluster's identity (issuer, epoch, a restore,
// the shared settings), builds the authority on clk and installs the keys
// this node was given.
func startAuthority(ctx context.Context, cfg Config, clk clock.Clock, st store.Store, master, otherMaster []byte,
	adminKey, url string, wit *witness) (*authority.Authority, store.ClusterInfo, error) {
	log := cfg.Logger
	ac := cfg.Authority
	ac.Clock, ac.Logger = clk, log // checkConfig refused another clock
	id, err := clusterIdentity(ctx, st, firstNonEmpty(cfg.Issuer, ac.Issuer), url, cfg.DB != "", log)
	if err != nil {
		return nil, id, err
	}
	rc := restoreCheck{renew: cfg.NewEpoch, restored: cfg.Restored, policy: cfg.AfterRestore, keep: configuredKeys(adminKey, cfg.FeedKey), witness: wit}
	if id, err = checkEpoch(ctx, st, id, rc, clk.Now(), log); err != nil {
		return nil, id, err
	}
	ac.Issuer = id.Issuer
	if otherMaster != nil {
		ac.OtherMasterKeys = [][]byte{otherMaster}
		log.Info("master key rotation: TEGATA_MASTER_KEY_OTHER opens what it sealed; this node seals with TEGATA_MASTER_KEY and re-seals under it at start")
	}
	mine, alt, err := nodeSettings(ac, master)
	if err != nil {
		return nil, id, err
	}
	if id, err = checkSettings(ctx, st, id, mine, alt, cfg.UpdateSettings, log); err != nil {
		return nil, id, err
	}
	a, err := authority.New(ctx, st, master, ac)
	if err != nil {
		return nil, id, err
	}
	return a, id, installKeys(ctx, cfg, a, adminKey)
}

// installKeys installs the bootstrap admin key and, when given, the feed key.
func installKeys(ctx context.Context, cfg Config, a *authority.Authority, adminKey string) error {
	if err := installKey(ctx, a, "bootstrap", adminKey, authority.RoleAdmin, cfg.ReplaceKeys); err != nil {
		return err
	}
	if cfg.FeedKey == "" {
		cfg.Logger.Info("no feed API key installed (TEGATA_FEED_KEY unset): give gates and verifiers a key made with " +
			"'tegata apikeys create --name NAME --role feed'")
		return nil
	}
	if err := installKey(ctx, a, "feed", cfg.FeedKey, authority.RoleFeed, cfg.ReplaceKeys); err != nil {
		return err
	}
	cfg.Logger.Info("feed API key from TEGATA_FEED_KEY installed (name feed, role feed): gates and verifiers may follow with it")
	return nil
}

// newHub is the feed hub. It goes on sending an entry for the leeway past
// its expiry, to verifiers whose clock is behind, and judges expiry by the
// authority's clock; the verifier bookkeeping uses that clock too.
func newHub(cfg Config, a *authority.Authority, st store.Store, id store.ClusterInfo, limits httpapi.Limits, license *inforce.License) *feed.Hub {
	return feed.NewHub(observedLog{Source: st, observe: a.Observe}, feed.HubConfig{
		Logger:        cfg.Logger,
		Grace:         a.Config().Leeway,
		Clock:         a.Config().Clock,
		Epoch:         id.Epoch,
		Issuer:        id.Issuer,
		License:       license.Until,
		StaleAfterCap: cfg.MaxStaleAfter,
		Heard:         st.Heard,
		// Other nodes list this one's verifiers from their stored records.
		SharedRecords:       broadcaster(st) != nil,
		FollowersPerKey:     verifierRecordsPer * limits.FeedStreamsPerKey,
		FollowersPerAddress: verifierRecordsPer * limits.FeedStreamsPerAddress,
	})
}

// observedLog is the hub's Source, which shows the authority every head
// the hub reads (Authority.Observe): the hub reads it at each heartbeat,
// and the authority's once-a-second read of the log rides on that one
// instead of being a database round trip of its own.
type observedLog struct {
	feed.Source
	observe func(head int64)
}

func (o observedLog) Head(ctx context.Context) (int64, error) {
	head, err := o.Source.Head(ctx)
	if err == nil {
		o.observe(head)
	}
	return head, err
}

// newAPI is the HTTP API over the authority, the feed hub, the cluster's
// confirmations, status lists and the Shared Signals transmitter, with its
// metrics.
//
// With cfg.MetricsAddr set, /metrics is left out of the API and returned as
// metrics, for a listener of its own.
func newAPI(cfg Config, clk clock.Clock, a *authority.Authority, st store.Store, id store.ClusterInfo, hub *feed.Hub,
	cl *inforce.Cluster, tx *ssf.Transmitter, limits httpapi.Limits, feedCtx context.Context) (api, metrics http.Handler, err error) {
	reg, instruments, err := newMetrics()
	if err != nil {
		return nil, nil, err
	}
	for _, c := range []prometheus.Collector{cl.Collector(), opsCollector{a: a, st: st, now: clk.Now}, buildinfo.Collector()} {
		if err := reg.Register(c); err != nil {
			return nil, nil, fmt.Errorf("metrics: %w", err)
		}
	}
	metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	hc := httpapi.Config{
		Feed:        hub,
		FeedReady:   hub.Ready,
		Position:    http.HandlerFunc(hub.ServePosition),
		Reports:     http.HandlerFunc(hub.ServeReports),
		Metrics:     metrics,
		Instruments: instruments,
		Logger:      cfg.Logger,
		Limits:      limits,
		Clock:       clk,
		BodyTimeout: cfg.BodyTimeout,
		FeedMaxAge:  cfg.FeedMaxAge,
		InForce:     drainingConfirm{cl, feedCtx},
		MaxConfirm:  cfg.MaxConfirm,
		Epoch:       id.Epoch,
		SSF:         tx,
	}
	if sl := a.Config().StatusLists; !sl.Off() {
		hc.StatusLists = statuslist.NewPublisher(st, a, statuslist.Config{
			Issuer: id.Issuer, TTL: sl.TTL, Hold: sl.HoldPastExpiry(), Now: clk.Now, Logger: cfg.Logger})
	}
	if cfg.SSFInsecurePush {
		cfg.Logger.Warn("--ssf-insecure-push: event streams may push to http:// and to loopback and private addresses; never in production")
	}
	if cfg.MetricsAddr != "" {
		hc.Metrics = nil
		return httpapi.New(a, hc), metrics, nil
	}
	return httpapi.New(a, hc), nil, nil
}

// verifierRecordsPer is how many verifier records a node keeps per feed
// stream it allows an API key or a client address: a record outlives its
// streams by up to the verifier's staleness bound, so a verifier that
// restarted (a new id) holds two for a while.
const verifierRecordsPer = 4

func (r *Running) goRun(f func()) {
	r.wg.Add(1)
	go func() { defer r.wg.Done(); f() }()
}

// goRunLogged runs work until ctx ends, logging an error it stops with
// while ctx is still live: background work that fails is never silent.
func (r *Running) goRunLogged(ctx context.Context, what string, work func(context.Context) error) {
	r.goRun(func() {
		if err := work(ctx); err != nil && ctx.Err() == nil {
			r.log.Error(what+" stopped", "err", err)
		}
	})
}

// Shutdown stops accepting requests, ends feed streams (verifiers resume
// elsewhere by Last-Event-ID), waits for in-flight requests up to ctx's
// deadline (cancelling those left then), then closes the store.
func (r *Running) Shutdown(ctx context.Context) error {
	r.metrics.close()
	if r.console != nil {
		_ = r.console.Close()
	}
	err := r.srv.Shutdown(ctx)
	if err != nil {
		r.cancelRequests()
		_ = r.srv.Close()
	}
	r.stopFeed() // already done by the server unless Shutdown failed early
	r.stopBackground()
	r.wg.Wait()
	r.cancelRequests()
	r.witness()
	r.markStopped()
	if cerr := r.Store.Close(); err == nil {
		err = cerr
	}
	if r.data != nil {
		r.data.close()
	}
	return err
}

// newMetrics returns this server's own registry, with the Go runtime,
// process and HTTP metrics registered.
func newMetrics() (*prometheus.Registry, *httpapi.Metrics, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, nil, fmt.Errorf("metrics: %w", err)
		}
	}
	m, err := httpapi.NewMetrics(reg)
	if err != nil {
		return nil, nil, err
	}
	return reg, m, nil
}

// sqliteFile is the embedded database's file name in the data directory.
const sqliteFile = "tegata.db"

func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

func openStore(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, error) {
	if isPostgres(cfg.DB) {
		st, err := postgres.Open(ctx, cfg.DB)
		if err != nil {
			return nil, fmt.Errorf("open Postgres: %w", err)
		}
		log.Info("store: Postgres")
		return st, nil
	}
	path := filepath.Join(cfg.DataDir, sqliteFile)
	st, err := sqlite.OpenWith(ctx, path, sqlite.Options{MaxSize: cfg.SQLiteMaxSize})
	if err != nil {
		return nil, fmt.Errorf("open SQLite %s: %w", path, err)
	}
	log.Info("store: embedded SQLite", "path", path)
	return st, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
