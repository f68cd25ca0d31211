package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/verifier"
)

// gateFlags are the flags of 'tegata gate'.
type gateFlags struct {
	authority, listen, upstream string
	audience, issuer, cookie    string
	claims, keyFile             string
	staleAfter                  time.Duration
	introspect                  bool
	level, format               string
	web                         webFlags
}

func (f *gateFlags) register(env Env, fs *flag.FlagSet) {
	fs.StringVar(&f.authority, "authority", env.Getenv("TEGATA_AUTHORITY"), "authority base URL, or several comma-separated for failover (env TEGATA_AUTHORITY; required)")
	fs.StringVar(&f.listen, "listen", envOr(env, "TEGATA_GATE_LISTEN", "127.0.0.1:8081"), "listen address (env TEGATA_GATE_LISTEN)")
	fs.StringVar(&f.upstream, "upstream", "", "reverse-proxy verified requests to this URL; empty = forward-auth endpoint only")
	fs.StringVar(&f.audience, "audience", "", "required aud claim; empty = the audience the authority publishes")
	fs.StringVar(&f.issuer, "issuer", "", "required iss claim; empty = the issuer the authority publishes")
	fs.StringVar(&f.cookie, "cookie", gate.DefaultCookie, "cookie holding the token when there is no Authorization header")
	fs.StringVar(&f.claims, "claim-headers", "*", "comma-separated app claims sent as X-Tegata-Claim-* headers; * = all, empty = none")
	fs.DurationVar(&f.staleAfter, "stale-after", 10*time.Second, "refuse tokens (or introspect) after this long without hearing from the authority")
	fs.BoolVar(&f.introspect, "introspect-fallback", false, "while stale, ask the authority about each token instead of refusing it")
	fs.StringVar(&f.keyFile, "key-file", filepath.Join(envOr(env, "TEGATA_DATA", "tegata-data"), "api-key"), "file holding the API key (a feed key suffices), used when TEGATA_API_KEY is unset")
	fs.StringVar(&f.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.format, "log-format", "text", "text or json")
	f.web.register(env, fs)
}

// verifierConfig checks the flags that concern the verifier.
func (f *gateFlags) verifierConfig(env Env) (verifier.Config, error) {
	var cfg verifier.Config
	for _, a := range strings.Split(f.authority, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Authorities = append(cfg.Authorities, a)
		}
	}
	if len(cfg.Authorities) == 0 {
		return cfg, usageErr("--authority (or TEGATA_AUTHORITY) is required")
	}
	if f.staleAfter <= 0 {
		return cfg, usageErr("--stale-after must be positive")
	}
	key, err := apiKeyFrom(env, f.keyFile)
	if err != nil {
		return cfg, err
	}
	cfg.APIKey, cfg.Audience, cfg.Issuer = key, f.audience, f.issuer
	cfg.StaleAfter, cfg.Introspect = f.staleAfter, f.introspect
	return cfg, nil
}

// gateConfig checks the flags that concern the gate itself.
func (f *gateFlags) gateConfig() (gate.Config, error) {
	cfg := gate.Config{Cookie: f.cookie}
	if f.upstream != "" {
		u, err := url.Parse(f.upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, usageErr("--upstream %q is not an http(s) URL", f.upstream)
		}
		cfg.Upstream = u
	}
	if f.claims != "*" {
		cfg.Claims = []string{}
		for _, c := range strings.Split(f.claims, ",") {
			if c = strings.TrimSpace(c); c != "" {
				cfg.Claims = append(cfg.Claims, c)
			}
		}
	}
	return cfg, nil
}

func gateCmd(env Env, args []string) error {
	fs := newFlags(env, "gate")
	var f gateFlags
	f.register(env, fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	vcfg, err := f.verifierConfig(env)
	if err != nil {
		return err
	}
	gcfg, err := f.gateConfig()
	if err != nil {
		return err
	}
	wcfg, err := f.web.config(fs, gcfg.Upstream != nil, vcfg)
	if err != nil {
		return err
	}
	log, err := newLogger(env.Stderr, f.level, f.format)
	if err != nil {
		return err
	}
	vcfg.Logger, gcfg.Logger = log, log
	if wcfg != nil {
		wcfg.Logger = log
		f.web.warn(log)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runGate(ctx, f.listen, vcfg, gcfg, wcfg, log)
}

// gateStartTimeout bounds the verifier's startup: discovery and the first
// key set fetch.
const gateStartTimeout = 30 * time.Second

// runGate starts the verifier and serves the gate until ctx ends, then
// drains in-flight requests for up to 10 seconds.
func runGate(ctx context.Context, addr string, vcfg verifier.Config, gcfg gate.Config, wcfg *gate.WebConfig, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, gateStartTimeout)
	v, err := verifier.New(sctx, vcfg)
	cancel()
	if err != nil {
		ln.Close()
		return err
	}
	defer v.Close()
	if wcfg != nil {
		if gcfg.Web, err = startWeb(ctx, v, *wcfg); err != nil {
			ln.Close()
			return err
		}
	}
	go logWhenReady(ctx, v, log)
	srv := &http.Server{Handler: gate.New(v, gcfg), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("tegata gate listening", "addr", ln.Addr().String(), "mode", gateMode(gcfg), "authorities", vcfg.Authorities)
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	if err := srv.Shutdown(dctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func gateMode(cfg gate.Config) string {
	if cfg.Web != nil {
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
		log.Info("tegata gate ready", "position", st.Position, "entries", st.Entries, "keys", st.Keys)
	}
}
