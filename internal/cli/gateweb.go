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
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/verifier"
)

// webFlags are the flags of 'tegata gate --web'.
type webFlags struct {
	on, insecureCookies       bool
	public, loginPath, origin string
	loginHandoffPaths         string
	sameSite, unavailablePage string
	refreshPerAddress         float64
	dbsc                      bool
}

// webFlagNames are the flags that mean nothing without --web.
var webFlagNames = []string{"public", "login-path", "login-handoff-paths", "origin", "insecure-cookies", "cookie-samesite", "refresh-per-address", "unavailable-page", "dbsc"}

func (f *webFlags) register(env Env, fs *flagSet) {
	fs.BoolVar(&f.on, "web", false, "web sessions for browser apps: HttpOnly cookies, refresh, CSRF defence, /.tegata/ pages; needs --upstream")
	fs.StringVar(&f.public, "public", "", "with --web: comma-separated path prefixes anonymous requests may reach, e.g. /login,/assets/")
	fs.StringVar(&f.loginPath, "login-path", gate.DefaultLoginPath, "with --web: where anonymous page requests are sent, with ?next=")
	fs.StringVar(&f.loginHandoffPaths, "login-handoff-paths", "",
		"with --web: comma-separated path prefixes whose answers alone may sign in with X-Tegata-Login, e.g. /login,/sso/; default any path")
	fs.StringVar(&f.origin, "origin", "", "with --web: the app's public origin, e.g. https://app.example.com, trusted besides the request's Host")
	fs.BoolVar(&f.insecureCookies, "insecure-cookies", false, "with --web: cookies without Secure and __Host-, for plain-http development off localhost only")
	fs.StringVar(&f.sameSite, "cookie-samesite", "lax", "with --web: lax or strict")
	fs.StringVar(&f.unavailablePage, "unavailable-page", "", "with --web: HTML file sent (503) to browser page requests while sessions cannot be checked; default a page that retries every 5 s")
	fs.BoolVar(&f.dbsc, "dbsc", true, "with --web: offer Device Bound Session Credentials at sign-in (browsers that support it bind the session to a key they cannot export); --dbsc=false: offer none (sessions bound already still refresh)")
	fs.Var(offFloat{&f.refreshPerAddress, gate.DefaultRefreshPerAddress}, "refresh-per-address",
		"with --web: session refreshes one client address may start per second (burst: 10 s worth; a refused one counts 10); behind a proxy, raise it; 0 or off: no limit")
}

// config checks the web flags and returns the web session configuration,
// nil without --web. The session calls fail over between the authorities
// like the verifier's (see failover).
func (f *webFlags) config(fs *flag.FlagSet, upstream bool, vcfg verifier.Config) (*gate.WebConfig, error) {
	if !f.on {
		var stray string
		fs.Visit(func(fl *flag.Flag) {
			for _, n := range webFlagNames {
				if fl.Name == n && stray == "" {
					stray = n
				}
			}
		})
		if stray != "" {
			return nil, usageErr("--%s only applies with --web", stray)
		}
		return nil, nil
	}
	if !upstream {
		return nil, usageErr("--web needs --upstream: the gate signs browsers in on the app's answers")
	}
	hc, err := newFailover(vcfg.Authorities)
	if err != nil {
		return nil, err
	}
	hc.Transport.(*failover).initialKey = vcfg.APIKey
	cfg := &gate.WebConfig{LoginPath: f.loginPath, Origin: f.origin, InsecureCookies: f.insecureCookies,
		Authority:         &client.Client{BaseURL: vcfg.Authorities[0], APIKey: vcfg.APIKey, HTTPClient: hc},
		RefreshPerAddress: f.refreshPerAddress, NoDBSC: !f.dbsc}
	if f.unavailablePage != "" {
		if cfg.UnavailablePage, err = os.ReadFile(f.unavailablePage); err != nil {
			return nil, usageErr("--unavailable-page: %v", err)
		}
	}
	cfg.Public = splitList(f.public)
	cfg.LoginHandoffPaths = splitList(f.loginHandoffPaths)
	for _, p := range cfg.LoginHandoffPaths {
		if !strings.HasPrefix(p, "/") {
			return nil, usageErr("--login-handoff-paths: %q must begin with /", p)
		}
	}
	switch strings.ToLower(f.sameSite) {
	case "lax":
		cfg.SameSite = http.SameSiteLaxMode
	case "strict":
		cfg.SameSite = http.SameSiteStrictMode
	default:
		return nil, usageErr("--cookie-samesite must be lax or strict")
	}
	return cfg, nil
}

// warn logs the settings that weaken web sessions, or that browsers will
// not honour.
func (f *webFlags) warn(log *slog.Logger) {
	if f.insecureCookies {
		log.Warn("--insecure-cookies: session cookies lack Secure and the __Host- prefix; " +
			"anyone on the network path can read them over plain http. Development only.")
		return
	}
	if u, err := url.Parse(f.origin); err == nil && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		log.Warn("--origin is plain http on a host other than localhost: browsers drop Secure cookies there, "+
			"so nobody can sign in. Serve https, or use --insecure-cookies for development.", "origin", f.origin)
	}
}

func isLoopbackHost(h string) bool {
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "::1" || strings.HasPrefix(h, "127.")
}

// gateKeyFrom returns the key of a gate with --web: TEGATA_GATE_KEY, else
// the content of keyFile. A web gate creates and revokes sessions, which a
// feed key may not, so TEGATA_FEED_KEY is not read.
func gateKeyFrom(env Env, keyFile string) (secretValue, error) {
	k, err := secretFrom(env, "TEGATA_GATE_KEY", keyFile)
	if !errors.Is(err, errNoSecret) {
		return k, err
	}
	msg := "no gate key: --web needs TEGATA_GATE_KEY or --key-file holding an API key with the gate role " +
		fmt.Sprintf("(tegata apikeys create --name web --role gate) (%v)", missing(err))
	if env.Getenv("TEGATA_FEED_KEY") != "" {
		msg += "; TEGATA_FEED_KEY is set, but a feed key cannot create sessions"
	}
	return k, usageErr("%s", msg)
}

// webCheckTimeout bounds the start-up check of the gate key's role.
const webCheckTimeout = 30 * time.Second

// startWeb builds the web session layer and checks at once that the API
// key may manage sessions, so a feed key is named at start rather than at
// the first sign-in.
func startWeb(ctx context.Context, v *verifier.Verifier, cfg gate.WebConfig) (*gate.Web, error) {
	web, err := gate.NewWeb(v, cfg)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, webCheckTimeout)
	defer cancel()
	_, err = cfg.Authority.Sessions(cctx, "tegata-gate-start-check")
	var ce *client.Error
	if errors.As(err, &ce) && (ce.Status == http.StatusUnauthorized || ce.Status == http.StatusForbidden) {
		return nil, errors.New("the API key may not manage sessions: --web needs a key with role gate " +
			"(tegata apikeys create --name web --role gate)")
	}
	if err != nil {
		return nil, err
	}
	return web, nil
}

// failover carries the web gate's session calls to the first authority that
// accepts a connection, in --authority order, as the verifier does for
// discovery and the feed. Only a request that could not connect is tried
// on the next authority: it was never sent, so a sign-in or a refresh is
// never made twice.
type failover struct {
	next  http.RoundTripper
	bases []*url.URL // each authority's base URL; requests are made to the first's
	// initialKey is the key the client was made with; a request carrying
	// it carries key instead once set (the key file changed: keyWatch).
	initialKey string
	key        atomic.Pointer[string]
}

// webKeySetter returns how a new gate key reaches the web gate's session
// calls.
func webKeySetter(cfg *gate.WebConfig) func(string) {
	f, ok := cfg.Authority.HTTPClient.Transport.(*failover)
	if !ok {
		return nil
	}
	return func(key string) { f.key.Store(&key) }
}

func newFailover(authorities []string) (*http.Client, error) {
	f := &failover{next: http.DefaultTransport}
	for _, a := range authorities {
		u, err := url.Parse(a)
		if err != nil {
			return nil, usageErr("--authority %q is not a URL", a)
		}
		f.bases = append(f.bases, u)
	}
	return &http.Client{Transport: f}, nil
}

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	var err error
	key := f.key.Load()
	for i, base := range f.bases {
		r := req.Clone(req.Context())
		if key != nil && f.initialKey != "" && r.Header.Get("Authorization") == "Bearer "+f.initialKey {
			r.Header.Set("Authorization", "Bearer "+*key)
		}
		r.URL.Scheme, r.URL.Host, r.Host = base.Scheme, base.Host, ""
		r.URL.Path = strings.TrimSuffix(base.Path, "/") + strings.TrimPrefix(req.URL.Path, strings.TrimSuffix(f.bases[0].Path, "/"))
		r.URL.RawPath = ""
		if i > 0 && req.GetBody != nil {
			if r.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		var resp *http.Response
		resp, err = f.next.RoundTrip(r)
		var op *net.OpError
		if err == nil || !errors.As(err, &op) || op.Op != "dial" {
			return resp, err
		}
	}
	return nil, err
}

// splitList splits a comma-separated flag value, dropping empty items; nil
// when there are none.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
