package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/internal/buildinfo"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/verifier"
)

// gateFlags are the flags of 'tegata gate'.
type gateFlags struct {
	authority, listen, upstream string
	audience, issuer, cookie    string
	publicURL                   string
	name                        string
	claims, keyFile             string
	wsOrigins, proxies          string
	metricsListen               string
	tlsCert, tlsKey, caFile     string
	staleAfter, startTimeout    time.Duration
	dpopNonce                   time.Duration
	introspect                  bool
	maxConns                    int
	level, format               string
	web                         webFlags
}

func (f *gateFlags) register(env Env, fs *flagSet) {
	fs.StringVar(&f.authority, "authority", "", "authority base URL, or several comma-separated for failover (required)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8081", "listen address")
	fs.StringVar(&f.upstream, "upstream", "", "reverse-proxy verified requests to this URL; empty = forward-auth endpoint only")
	fs.StringVar(&f.audience, "audience", "", "required aud claim; empty = the audience the authority publishes (set it only to pin that value)")
	fs.StringVar(&f.issuer, "issuer", "", "required iss claim; empty = the issuer the authority publishes (set it only to pin that value)")
	fs.StringVar(&f.cookie, "cookie", gate.DefaultCookie, "cookie holding the token when there is no Authorization header")
	fs.StringVar(&f.publicURL, "public-url", "", "the base URL clients address the app at (https://app.example.com), which DPoP proofs name; empty = the X-Forwarded-Proto/-Host (else Host) of a proxy in --trusted-proxies, and DPoP requests from any other peer are refused")
	fs.StringVar(&f.claims, "claim-headers", "*", "comma-separated app claims sent as X-Tegata-Claim-* headers; * = all, empty = none")
	fs.StringVar(&f.proxies, "trusted-proxies", "", "comma-separated CIDRs of the proxies in front of the gate (TLS terminator, load balancer): their X-Forwarded-For gives the client's address (per-address limits, refresh rescue), their X-Forwarded-Proto/-Host reach the upstream and, without --public-url, name the URL DPoP proofs must name, and their connections are not capped")
	fs.StringVar(&f.wsOrigins, "websocket-origins", "", "with --upstream: comma-separated origins (https://host[:port]) besides the gate's own host whose pages may open WebSockets through it; others are refused 403")
	fs.DurationVar(&f.dpopNonce, "dpop-nonce", 0, "require DPoP proofs to carry a nonce this gate issued (RFC 9449 §8), sent in DPoP-Nonce and changed every D; 0 = no nonces")
	fs.DurationVar(&f.staleAfter, "stale-after", verifier.DefaultStaleAfter, "refuse tokens (or introspect) after this long without hearing from the authority")
	fs.BoolVar(&f.introspect, "introspect-fallback", false, "while stale, ask the authority about each token instead of refusing it")
	fs.StringVar(&f.name, "name", "", "how this gate appears in 'tegata verifiers' (default none: the host name and an instance id always show)")
	fs.IntVar(&f.maxConns, "max-conns-per-address", DefaultGateConnsPerAddress, "most connections open at once from one client address (an IPv6 /64); behind a proxy that opens more, raise it; 0 = no cap")
	fs.StringVar(&f.keyFile, "key-file", "", "file holding the gate's API key (feed role; gate role with --web), read when TEGATA_FEED_KEY (TEGATA_GATE_KEY with --web) is unset")
	fs.DurationVar(&f.startTimeout, "start-timeout", 0, "give up when no authority has accepted the gate within this long; 0 = wait for as long as it takes")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; with --tls-key")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM file of CA certificates trusted, besides the system's, for an https:// authority (a private or self-signed CA)")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve /metrics on this address too; forward-auth mode also serves it on --listen")
	fs.StringVar(&f.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.format, "log-format", "text", "text or json")
	f.web.register(env, fs)
}

// verifierConfig checks the flags that concern the verifier.
func (f *gateFlags) verifierConfig() (verifier.Config, error) {
	var cfg verifier.Config
	urls, err := authorityList(f.authority)
	if err != nil {
		return cfg, err
	}
	cfg.Authorities = urls
	if err := feed.CheckStaleAfter(f.staleAfter); err != nil {
		return cfg, usageErr("--stale-after: %v", err)
	}
	if f.startTimeout < 0 {
		return cfg, usageErr("--start-timeout must not be negative")
	}
	if f.dpopNonce < 0 {
		return cfg, usageErr("--dpop-nonce must not be negative (0: no nonces)")
	}
	cfg.DPoPNonce = f.dpopNonce
	cfg.Audience, cfg.Issuer = f.audience, f.issuer
	cfg.StaleAfter, cfg.Introspect, cfg.Name = f.staleAfter, f.introspect, f.name
	return cfg, nil
}

// gateConfig checks the flags that concern the gate itself.
func (f *gateFlags) gateConfig() (gate.Config, error) {
	cfg := gate.Config{Cookie: f.cookie, PublicURL: f.publicURL}
	if f.upstream != "" {
		u, err := url.Parse(f.upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, usageErr("--upstream %q is not an http(s) URL", f.upstream)
		}
		cfg.Upstream = u
	}
	proxies, err := parseProxies(f.proxies)
	if err != nil {
		return cfg, err
	}
	cfg.TrustedProxies = proxies
	for o := range strings.SplitSeq(f.wsOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.WebSocketOrigins = append(cfg.WebSocketOrigins, o)
		}
	}
	if len(cfg.WebSocketOrigins) > 0 && cfg.Upstream == nil {
		return cfg, usageErr("--websocket-origins only applies with --upstream: in forward-auth mode the proxy in front sees the WebSockets")
	}
	if f.claims != "*" {
		for _, c := range strings.Split(f.claims, ",") {
			if c = strings.TrimSpace(c); c != "" {
				cfg.Claims = append(cfg.Claims, c)
			}
		}
		if len(cfg.Claims) == 0 {
			cfg.MaxClaimBytes = -1 // --claim-headers "": no claim headers
		}
	}
	return cfg, nil
}

func gateCmd(env Env, args []string) error {
	fs := newFlags(env, "gate")
	var f gateFlags
	f.register(env, fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	vcfg, err := f.verifierConfig()
	if err != nil {
		return err
	}
	if vcfg.HTTPClient, err = trustCA(f.caFile); err != nil {
		return err
	}
	tc, err := serverTLS(f.tlsCert, f.tlsKey)
	if err != nil {
		return err
	}
	gcfg, err := f.gateConfig()
	if err != nil {
		return err
	}
	keyFrom := feedKeyFrom
	if f.web.on {
		keyFrom = gateKeyFrom
	}
	key, err := keyFrom(env, f.keyFile)
	if err != nil {
		return err
	}
	vcfg.APIKey = key.value
	wcfg, err := f.web.config(fs.FlagSet, gcfg.Upstream != nil, vcfg)
	if err != nil {
		return err
	}
	log, err := newLogger(env.Stderr, f.level, f.format)
	if err != nil {
		return err
	}
	if f.maxConns < 0 {
		return usageErr("--max-conns-per-address must not be negative")
	}
	vcfg.Logger, gcfg.Logger = log, log
	if wcfg != nil {
		wcfg.Logger, wcfg.TrustedProxies = log, gcfg.TrustedProxies
		f.web.warn(log)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runGate(ctx, gateRun{f: f, vcfg: vcfg, gcfg: gcfg, web: wcfg, log: log, keySource: key.source, tls: tc,
		keyFile: keyFilePath(env, key, f.keyFile)})
}

// DefaultGateConnsPerAddress is the default of tegata gate's
// --max-conns-per-address: high, since in forward-auth mode every
// connection comes from the proxy in front.
const DefaultGateConnsPerAddress = 1024

// gateRun is what runGate needs.
type gateRun struct {
	f         gateFlags
	vcfg      verifier.Config
	gcfg      gate.Config
	web       *gate.WebConfig // nil without --web
	log       *slog.Logger
	keySource string      // where the feed key came from, for error messages
	keyFile   string      // the file the key came from, watched for a new key; "" if none
	tls       *tls.Config // nil: plain HTTP
	// bodyTimeout bounds the arrival of a body the gate has not verified.
	// Zero: httpguard.BodyTimeout.
	bodyTimeout time.Duration
}

// runGate listens at once, answering /healthz and a not-ready /readyz while
// verifier.New waits for an authority (for --start-timeout, or as long as
// it takes), then serves the gate until ctx ends and drains in-flight
// requests for up to 10 seconds. A key the authority refuses ends it with an
// error naming where the key came from.
func runGate(ctx context.Context, run gateRun) error {
	log, f := run.log, run.f
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ln = httpguard.Listener(ln, f.maxConns, run.gcfg.TrustedProxies, log)
	if run.tls != nil {
		ln = tls.NewListener(ln, run.tls)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}), buildinfo.Collector())
	run.gcfg.Metrics = reg
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	h := &swapHandler{}
	h.set(&startingGate{proxy: run.gcfg.Upstream != nil, log: log})
	var root http.Handler = h
	if run.gcfg.Upstream == nil {
		// Forward-auth mode answers only its own paths: /metrics is one.
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics)
		mux.Handle("/", h)
		root = mux
	}
	servers := []*http.Server{newGateServer(root, run.bodyTimeout, log)}
	done := make(chan error, 2)
	go func() { done <- servers[0].Serve(ln) }()
	log.Info("tegata gate listening", "addr", ln.Addr().String(), "mode", gateMode(run.gcfg, run.web != nil), "authorities", run.vcfg.Authorities)
	if f.metricsListen != "" {
		mln, err := net.Listen("tcp", f.metricsListen)
		if err != nil {
			shutdown(servers, log)
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		servers = append(servers, newGateServer(metrics, run.bodyTimeout, log))
		go func() { done <- servers[1].Serve(mln) }()
		log.Info("tegata gate metrics listening", "addr", mln.Addr().String())
	}
	v, err := startVerifier(ctx, run)
	if err != nil {
		shutdown(servers, log)
		return err
	}
	defer v.Close()
	if run.web != nil {
		if run.gcfg.Web, err = startWeb(ctx, v, *run.web); err != nil {
			shutdown(servers, log)
			return err
		}
	}
	g, err := gate.New(v, run.gcfg)
	if err != nil {
		shutdown(servers, log)
		return err
	}
	h.set(g)
	go logWhenReady(ctx, v, log)
	if run.keyFile != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		w := &keyWatch{path: run.keyFile, v: v, log: log, current: run.vcfg.APIKey}
		if run.web != nil {
			w.web = webKeySetter(run.web)
		}
		go w.run(ctx, hup)
	}
	select {
	case err := <-done:
		shutdown(servers, log)
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	return shutdown(servers, log)
}

// startVerifier runs verifier.New for --start-timeout (0: until ctx ends)
// and turns a refused key into a message that says which key it was.
func startVerifier(ctx context.Context, run gateRun) (*verifier.Verifier, error) {
	sctx, cancel := ctx, context.CancelFunc(func() {})
	if run.f.startTimeout > 0 {
		sctx, cancel = context.WithTimeout(ctx, run.f.startTimeout)
	}
	defer cancel()
	v, err := verifier.New(sctx, run.vcfg)
	switch {
	case errors.Is(err, verifier.ErrKeyRefused):
		role := "feed"
		if run.web != nil {
			role = "gate"
		}
		return nil, fmt.Errorf("the authority refused the %s key from %s; give the gate a live API key with the %[1]s role "+
			"(tegata apikeys create --name NAME --role %[1]s): %[3]w", role, run.keySource, err)
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("stopped before an authority answered: %w", err)
	case err != nil && run.f.startTimeout > 0:
		return nil, fmt.Errorf("no authority accepted the gate within --start-timeout %v: %w", run.f.startTimeout, err)
	}
	return v, err
}

// newGateServer serves h. Bodies of requests the gate has not verified
// must arrive within bodyTimeout (zero: httpguard.BodyTimeout); verified
// uploads only have to keep moving (httpguard.ForwardBodyIdle).
func newGateServer(h http.Handler, bodyTimeout time.Duration, log *slog.Logger) *http.Server {
	if bodyTimeout == 0 {
		bodyTimeout = httpguard.BodyTimeout
	}
	return &http.Server{Handler: httpguard.BodyDeadline(h, bodyTimeout), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// shutdown drains the servers for up to 10 seconds.
func shutdown(servers []*http.Server, log *slog.Logger) error {
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var first error
	for _, s := range servers {
		if err := s.Shutdown(dctx); err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = err
		}
	}
	return first
}

// swapHandler serves the handler set last: startingGate until the
// verifier exists, then the gate.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

func gateMode(cfg gate.Config, web bool) string {
	if web {
		return "web sessions, proxy to " + cfg.Upstream.Redacted()
	}
	if cfg.Upstream != nil {
		return "proxy to " + cfg.Upstream.Redacted()
	}
	return "forward-auth"
}

// logWhenReady logs once the verifier has caught up with the feed, so that
// the log shows when tokens start being accepted.
func logWhenReady(ctx context.Context, v *verifier.Verifier, log *slog.Logger) {
	if err := v.WaitReady(ctx); err == nil {
		st := v.State()
		log.Info("tegata gate ready", "position", st.Position, "entries", st.Entries, "keys", st.Keys, "id", st.ID)
	}
}
