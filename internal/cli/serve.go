package cli

import (
	"context"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/console"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/server"
)

func serve(env Env, args []string) error {
	cfg, err := serveConfig(env, args)
	if err != nil {
		return err
	}
	log := cfg.Logger
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	r, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.Shutdown(sctx)
}

// serveConfig turns the command line and environment into server.Config.
func serveConfig(env Env, args []string) (server.Config, error) {
	fs := newFlags(env, "serve")
	var cfg server.Config
	fs.StringVar(&cfg.Addr, "addr", server.DefaultAddr, "listen address")
	fs.StringVar(&cfg.DataDir, "data", server.DefaultDataDir, "data directory: SQLite database, key files")
	fs.StringVar(&cfg.DB, "db", "", "Postgres URL for many nodes; empty = embedded SQLite")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; with --tls-key")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "the PEM private key of --tls-cert")
	consoleOn := fs.Bool("console", true, "serve the operator console at /console/ (sign in with an admin API key)")
	fs.StringVar(&cfg.ConsoleAddr, "console-addr", "", "serve the console on this address instead of --addr (keep it off the public balancer)")
	fs.DurationVar(&cfg.ConsoleIdleTimeout, "console-idle-timeout", console.DefaultIdleTimeout, "end a console session after this long without a request")
	fs.StringVar(&cfg.AdvertiseURL, "advertise-url", "", "the URL gates and verifiers can reach this node at (through NAT or a balancer, as they see it): published on the feed with the other nodes', so that they follow nodes started after them; empty: not advertised")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve /metrics on this address instead of --addr (keep it off the public balancer)")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "with --metrics-addr: serve Go's CPU, heap and goroutine profiles under /debug/pprof/ there (never on --addr)")
	fs.Int64Var(&cfg.SQLiteMaxSize, "sqlite-max-size", 0, "cap of the embedded SQLite database in bytes: past it writes are refused and /readyz answers 503, as on a full disk; 0 = no cap")
	fs.StringVar(&cfg.Issuer, "issuer", "", "issuer URL put in tokens; default http://<addr>")
	a := &cfg.Authority
	fs.StringVar(&a.Audience, "audience", authority.DefaultAudience, "aud claim of access tokens (not tegata-console, the operator console's own)")
	fs.StringVar(&a.Algorithm, "alg", authority.DefaultAlgorithm, "signing algorithm of new keys: EdDSA or ES256 (existing keys keep theirs until 'tegata keys rotate')")
	fs.DurationVar(&a.AccessTTL, "access-ttl", authority.DefaultAccessTTL, "access token lifetime")
	fs.DurationVar(&a.RefreshTTL, "refresh-ttl", authority.DefaultRefreshTTL, "refresh token idle lifetime")
	fs.DurationVar(&a.SessionTTL, "session-ttl", authority.DefaultSessionTTL, "absolute session lifetime")
	fs.Var(offDuration{&a.RefreshGrace, authority.DefaultRefreshGrace}, "refresh-grace", "window in which a concurrent refresh with the same token is not theft; 0 or off: none")
	fs.DurationVar(&a.DPoPNonce, "dpop-nonce", 0, "require a server nonce (RFC 9449 §8) in DPoP proofs sent to sign-in and refresh, changing this often (a nonce is good for one to two of it; every node with the same master key accepts every node's); 0: no nonces")
	fs.DurationVar(&a.KeyPublishDelay, "key-publish-delay", authority.DefaultKeyPublishDelay, "how long a rotated key is published before it signs")
	statusList := fs.Bool("status-list", true, "publish Token Status Lists: every access token carries a status claim (draft-ietf-oauth-status-list)")
	fs.IntVar(&a.StatusLists.Size, "status-list-size", authority.DefaultStatusListSize, "entries per status list (a multiple of 8); a new list starts when half are in use")
	fs.DurationVar(&a.StatusLists.TTL, "status-list-ttl", authority.DefaultStatusListTTL, "how long relying parties may cache a status list (its ttl; exp = iat + ttl)")
	fs.Var(offDuration{&a.StatusLists.Hold, authority.DefaultStatusListHold}, "status-list-hold", "how long a revoked token's status list entry stays INVALID after its revocation expired (the leeway past the token's exp): cover the clock skew your relying parties allow (ASP.NET 5m, Spring 1m); 0 or off: none")
	fs.BoolVar(&cfg.SSFInsecurePush, "ssf-insecure-push", false, "let event streams push to http:// and loopback/private addresses (development and tests only)")
	fs.DurationVar(&a.EventRetention, "event-retention", authority.DefaultEventRetention, "how long the log keeps revocations an event stream has not received yet (a receiver down, a paused stream)")
	limits := fs.String("rate-limits", "on", "on: per API key, per subject and per client address limits; off: none, for benchmarks")
	proxies := fs.String("trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is trusted, and whose connections are not capped")
	def := httpapi.DefaultLimits()
	var cp caps
	fs.IntVar(&cp.conns, "max-conns-per-address", def.ConnsPerAddress, "with --rate-limits on: most connections open at once from one client address (an IPv6 /64); 0 = no cap")
	fs.IntVar(&cp.streamsPerKey, "feed-streams-per-key", def.FeedStreamsPerKey, "with --rate-limits on: most feed streams one API key may hold open on this node; 0 = no cap")
	fs.IntVar(&cp.streamsPerAddr, "feed-streams-per-address", def.FeedStreamsPerAddress, "with --rate-limits on: most feed streams one client address may hold open on this node; 0 = no cap")
	fs.Var(offDuration{&cfg.FeedMaxAge, httpapi.DefaultFeedMaxAge}, "feed-max-age", "end each feed stream after about this long (verifiers reconnect and are authenticated again); 0 or off: never")
	fs.BoolVar(&cfg.NewEpoch, "new-epoch", false, "give the cluster a new epoch at start, so every verifier starts over: once, on one node, after restoring the database from a backup (every other node stopped)")
	fs.StringVar(&cfg.AfterRestore, "after-restore", server.AfterRestoreCutoff, "when a node finds the database restored from a backup: cutoff ends every session, access token and API key issued before (nothing revoked after the backup comes back); keep only makes verifiers start over, for a restore known to have lost nothing")
	fs.BoolVar(&cfg.ReplaceKeys, "replace-keys", false, "install TEGATA_API_KEY and TEGATA_FEED_KEY even though they differ from the cluster's, and revoke the keys they replace at once (after a leak; without it such a node refuses to start)")
	fs.BoolVar(&cfg.UpdateSettings, "update-settings", false, "make this node's settings (audience, alg, lifetimes, status lists) the cluster's; without it a node whose settings differ from the ones the cluster recorded refuses to start")
	fs.BoolVar(&cfg.Restored, "restored", false, "the database was restored from an older copy: apply the --after-restore policy at start even if nothing shows the restore (once, on one node, every other node stopped)")
	fs.DurationVar(&cfg.MaxStaleAfter, "max-stale-after", feed.DefaultStaleAfterCap, "the longest staleness bound this node takes a verifier at: a verifier naming a longer one gets leases no longer than this, and confirmations wait no longer for it once it is silent")
	fs.DurationVar(&cfg.MaxConfirm, "max-confirm", httpapi.DefaultMaxConfirm, "the longest a revocation's ?confirm= may wait (longer asks are cut to this)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	if err := parse(fs, args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, usageErr("unexpected argument %q", fs.Arg(0))
	}
	cfg.NoConsole = !*consoleOn
	if cfg.ConsoleIdleTimeout <= 0 {
		return cfg, usageErr("--console-idle-timeout must be positive")
	}
	if cfg.NoConsole && cfg.ConsoleAddr != "" {
		return cfg, usageErr("--console-addr needs the console on (drop --console=false)")
	}
	if !*statusList {
		a.StatusLists.Size = -1 // no status lists
	}
	lim, err := parseLimits(*limits, *proxies, cp)
	if err != nil {
		return cfg, err
	}
	cfg.Limits = &lim
	if cfg.AfterRestore != server.AfterRestoreCutoff && cfg.AfterRestore != server.AfterRestoreKeep {
		return cfg, usageErr("--after-restore must be %s or %s", server.AfterRestoreCutoff, server.AfterRestoreKeep)
	}
	if cfg.MaxConfirm <= 0 {
		return cfg, usageErr("--max-confirm must be positive")
	}
	if err := feed.CheckStaleAfter(cfg.MaxStaleAfter); err != nil {
		return cfg, usageErr("--max-stale-after: %v", err)
	}
	if err := server.CheckSettings(cfg); err != nil {
		return cfg, usageErr("%v", err)
	}
	if cfg.Logger, err = newLogger(env.Stderr, *level, *format); err != nil {
		return cfg, err
	}
	cfg.MasterKey, cfg.APIKey, cfg.FeedKey = env.Getenv("TEGATA_MASTER_KEY"), env.Getenv("TEGATA_API_KEY"), env.Getenv("TEGATA_FEED_KEY")
	cfg.MasterKeyOther = env.Getenv("TEGATA_MASTER_KEY_OTHER")
	return cfg, nil
}

// caps are the connection and stream caps set on the command line.
type caps struct{ conns, streamsPerKey, streamsPerAddr int }

func parseLimits(mode, proxies string, c caps) (httpapi.Limits, error) {
	var l httpapi.Limits
	switch mode {
	case "on":
		l = httpapi.DefaultLimits()
		if c.conns < 0 || c.streamsPerKey < 0 || c.streamsPerAddr < 0 {
			return l, usageErr("--max-conns-per-address, --feed-streams-per-key and --feed-streams-per-address must not be negative")
		}
		l.ConnsPerAddress, l.FeedStreamsPerKey, l.FeedStreamsPerAddress = c.conns, c.streamsPerKey, c.streamsPerAddr
	case "off":
	default:
		return l, usageErr("--rate-limits must be on or off")
	}
	var err error
	l.TrustedProxies, err = parseProxies(proxies)
	return l, err
}

// parseProxies reads --trusted-proxies: comma-separated CIDRs.
func parseProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, usageErr("--trusted-proxies: %q is not a CIDR (e.g. 10.0.0.0/8)", p)
		}
		out = append(out, pfx)
	}
	return out, nil
}
