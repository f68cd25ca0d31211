package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tegata-dev/tegata/internal/buildinfo"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/httperr"
)

// DefaultRelayListen is tegata relay's --listen default: loopback, since
// the relay serves the verifiers of its own machine.
const DefaultRelayListen = "127.0.0.1:8082"

// relayFlags are the flags of 'tegata relay'.
type relayFlags struct {
	upstream, listen, name   string
	keyFile, caFile          string
	staleAfter, startTimeout time.Duration
	level, format            string
}

func (f *relayFlags) register(fs *flagSet) {
	fs.StringVar(&f.upstream, "upstream", "", "the authority nodes' base URLs, comma-separated for failover (required)")
	fs.StringVar(&f.listen, "listen", DefaultRelayListen, "listen address of the feed served to this machine's verifiers; port 0 picks one")
	fs.DurationVar(&f.staleAfter, "stale-after", feed.DefaultRelayStaleAfter, "the relay's staleness bound: the longest lease it holds, and so the longest it grants")
	fs.StringVar(&f.name, "name", "", "how the relay appears in 'tegata verifiers' (default \"relay HOST\")")
	fs.StringVar(&f.keyFile, "key-file", "", "file holding the relay's API key (feed role), read when TEGATA_FEED_KEY is unset; verifiers must present the same key")
	fs.DurationVar(&f.startTimeout, "start-timeout", 0, "give up when no node has accepted the relay within this long; 0 = wait for as long as it takes")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM file of CA certificates trusted, besides the system's, for an https:// node")
	fs.StringVar(&f.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.format, "log-format", "text", "text or json")
}

func relayCmd(env Env, args []string) error {
	fs := newFlags(env, "relay")
	var f relayFlags
	f.register(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	if cfg.HTTPClient, err = trustCA(f.caFile); err != nil {
		return err
	}
	key, err := feedKeyFrom(env, f.keyFile)
	if err != nil {
		return err
	}
	cfg.APIKey = key.value
	if cfg.Logger, err = newLogger(env.Stderr, f.level, f.format); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runRelay(ctx, f, cfg, key.source)
}

// config checks the flags and returns the relay's configuration, key and
// logger aside.
func (f *relayFlags) config() (feed.RelayConfig, error) {
	var cfg feed.RelayConfig
	if f.upstream == "" {
		return cfg, usageErr("--upstream (or TEGATA_RELAY_UPSTREAM) is required: the authority nodes' base URLs")
	}
	var urls []string
	for u := range strings.SplitSeq(f.upstream, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		clean, err := feed.CleanNodeURL(u)
		if err != nil {
			return cfg, usageErr("--upstream: %v", err)
		}
		urls = append(urls, clean)
	}
	if len(urls) == 0 {
		return cfg, usageErr("--upstream names no URL")
	}
	if err := feed.CheckStaleAfter(f.staleAfter); err != nil {
		return cfg, usageErr("--stale-after: %v", err)
	}
	if f.startTimeout < 0 {
		return cfg, usageErr("--start-timeout must not be negative")
	}
	if !feed.Printable(f.name) || len(f.name) > feed.MaxNameLen {
		return cfg, usageErr("--name must be printable text of at most %d bytes", feed.MaxNameLen)
	}
	host, _ := os.Hostname()
	cfg.URLs, cfg.StaleAfter, cfg.Name, cfg.Host, cfg.Version = urls, f.staleAfter, f.name, host, buildinfo.Read().Version
	return cfg, nil
}

// runRelay listens at once (/healthz; /readyz not ready until the relay
// has caught up and holds a lease), logs its URL, and runs the relay
// until ctx ends. A key every node refuses ends it with an error naming
// where the key came from.
func runRelay(ctx context.Context, f relayFlags, cfg feed.RelayConfig, keySource string) error {
	log := cfg.Logger
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	r := feed.NewRelay(cfg)
	srv := newGateServer(relayMux(r), 0, log)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("tegata relay listening", "url", "http://"+ln.Addr().String(), "upstream", cfg.URLs, "stale_after", cfg.StaleAfter)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- r.Run(rctx) }()
	opened := make(chan error, 1)
	go func() { opened <- waitRelayOpened(rctx, r, f.startTimeout) }()
	go logRelayReady(rctx, r, log)
	for {
		select {
		case err := <-served:
			cancel()
			<-ran
			return fmt.Errorf("serve: %w", err)
		case err := <-opened:
			if err == nil {
				continue
			}
			cancel()
			<-ran
			_ = shutdown([]*http.Server{srv}, log)
			if errors.Is(err, feed.ErrRefused) {
				return fmt.Errorf("the authority refused the feed key from %s; give the relay a live API key with the feed role "+
					"(tegata apikeys create --name NAME --role feed): %w", keySource, err)
			}
			return err
		case <-ctx.Done():
			log.Info("shutting down")
			err := shutdown([]*http.Server{srv}, log)
			cancel()
			<-ran
			return err
		}
	}
}

// waitRelayOpened waits for a node to accept the relay: nil, an error
// wrapping feed.ErrRefused when every node refused its key, or one saying
// that --start-timeout passed.
func waitRelayOpened(ctx context.Context, r *feed.Relay, timeout time.Duration) error {
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		wctx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	err := r.WaitOpened(wctx)
	switch {
	case err == nil || errors.Is(err, feed.ErrRefused):
		return err
	case ctx.Err() != nil:
		return nil // shutting down: not the relay's error
	}
	return fmt.Errorf("no node accepted the relay within --start-timeout %v: %w", timeout, err)
}

// logRelayReady logs once the relay serves, so that the log shows when
// verifiers may follow it.
func logRelayReady(ctx context.Context, r *feed.Relay, log *slog.Logger) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.Ready() == nil {
			st := r.State()
			log.Info("tegata relay ready", "position", st.Position, "epoch", st.Epoch, "id", st.ID)
			return
		}
	}
}

// relayMux serves the relay's feed, /healthz, /readyz and /metrics.
func relayMux(r *feed.Relay) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
		buildinfo.Collector(), relayCollector{r})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httperr.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := r.Ready(); err != nil {
			httperr.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		httperr.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("/", r)
	return mux
}

// relayCollector exports the relay's position, lease and followers.
type relayCollector struct{ r *feed.Relay }

var (
	relayPositionDesc  = prometheus.NewDesc("tegata_relay_position", "The upstream log position the relay has applied.", nil, nil)
	relayFreshDesc     = prometheus.NewDesc("tegata_relay_lease_seconds", "Seconds left on the relay's upstream lease (0: none; its followers get none either).", nil, nil)
	relayFollowersDesc = prometheus.NewDesc("tegata_relay_followers", "Verifiers following the relay, heard within their bound.", nil, nil)
	relaySafeDesc      = prometheus.NewDesc("tegata_relay_safe_position", "The highest position every verifier behind the relay holds or refuses tokens without; the relay reports no further upstream.", nil, nil)
)

func (c relayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- relayPositionDesc
	ch <- relayFreshDesc
	ch <- relayFollowersDesc
	ch <- relaySafeDesc
}

func (c relayCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.State()
	ch <- prometheus.MustNewConstMetric(relayPositionDesc, prometheus.GaugeValue, float64(st.Position))
	ch <- prometheus.MustNewConstMetric(relayFreshDesc, prometheus.GaugeValue, max(0, time.Until(st.FreshUntil).Seconds()))
	n, safe := 0, int64(0)
	if h := c.r.Hub(); h != nil {
		n = h.FollowerCount()
		safe, _, _ = h.Safe()
	}
	ch <- prometheus.MustNewConstMetric(relayFollowersDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(relaySafeDesc, prometheus.GaugeValue, float64(safe))
}
