package gate

import (
	"context"
	"errors"
	"fmt"
	"github.com/tegata-dev/tegata/internal/dpop"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/requestid"
	"github.com/tegata-dev/tegata/verifier"
)

// Paths the gate answers itself in both modes.
const (
	PathHealth = "/healthz"
	PathReady  = "/readyz"
	PathAuth   = "/auth"
)

// gate is the handler New returns.
type gate struct {
	v     *verifier.Verifier
	cfg   Config
	log   *slog.Logger
	proxy *httputil.ReverseProxy // nil in forward-auth mode
	web   http.Handler           // cfg.Web around the proxy, or nil
	m     *metrics               // nil without Config.Metrics
	// origins and tunnels guard protocol switches (WebSockets) when
	// proxying: see websocket.go. tunnels is cfg.Web's when it is set.
	origins originCheck
	tunnels *tunnels
	// warnDPoPURLUnknown: the first DPoP request refused for want of
	// PublicURL or TrustedProxies is logged as a Warn.
	warnDPoPURLUnknown sync.Once
}

// New returns the gate's handler over v, which must be running (see
// verifier.New) for as long as the handler is used.
//
// Without cfg.Upstream it is a forward-auth endpoint: a request of any
// method to /auth, to any path under /auth/ (Envoy's ext_authz path_prefix)
// or to / (Traefik's ForwardAuth address) is answered 200 with the identity
// headers when its token is valid and 401 otherwise; other paths get 404.
// With cfg.Upstream every request except /healthz and /readyz is verified
// and, if valid, forwarded to the upstream; with cfg.Web too, the web
// session rules decide instead (see Web).
//
// New returns an error for a configuration it cannot serve: no verifier,
// Web without Upstream, or metrics that cannot be registered with
// cfg.Metrics (registered there already by another gate).
func New(v *verifier.Verifier, cfg Config) (http.Handler, error) {
	if v == nil {
		return nil, errors.New("gate: New needs a verifier (verifier.New)")
	}
	if cfg.PublicURL != "" {
		if _, err := dpop.NormalizeURL(cfg.PublicURL); err != nil {
			return nil, fmt.Errorf("gate: Config.PublicURL %q: %v", cfg.PublicURL, err)
		}
	}
	if cfg.Web != nil && cfg.Upstream == nil {
		return nil, errors.New("gate: Config.Web needs Config.Upstream: web sessions sign browsers in on the app's answers")
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Metrics, v)
	if err != nil {
		return nil, err
	}
	log := slog.New(requestid.LogHandler(cfg.Logger.Handler()))
	logDPoPSetup(log, cfg)
	g := &gate{v: v, cfg: cfg, log: log, m: m, tunnels: newTunnels(v, clock.Or(cfg.Clock), log)}
	origins := cfg.WebSocketOrigins
	if cfg.Upstream != nil {
		g.proxy = g.newProxy()
	}
	if cfg.Web != nil {
		g.web = cfg.Web.handler(g.proxy, true)
		g.tunnels = cfg.Web.tunnels
		if m != nil {
			cfg.Web.metrics.Store(m)
		}
		origins = append(slices.Clip(origins), cfg.Web.origin)
	}
	if g.origins, err = newOriginCheck(cfg.TrustedProxies, origins...); err != nil {
		return nil, fmt.Errorf("%w (Config.WebSocketOrigins)", err)
	}
	fromProxy := func(r *http.Request) bool { return httpguard.FromTrustedProxy(r, cfg.TrustedProxies) }
	return requestid.Trusting(fromProxy, g), nil
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == PathHealth:
		g.health(w, r)
	case r.URL.Path == PathReady:
		g.ready(w, r)
	case g.proxy != nil && hasDotSegment(r.URL.Path):
		badPath(w) // before anything else: see hasDotSegment
	case g.proxy != nil && !g.origins.allowed(r):
		refuseUpgradeOrigin(g.log, w, r)
	case g.web != nil:
		g.web.ServeHTTP(w, r)
	case g.proxy != nil:
		g.forward(w, r)
	case isAuthPath(r.URL.Path):
		g.check(w, r)
	default:
		g.m.outcome(outcomeNotFound)
		notFound(w)
	}
}

// notFound answers a path a forward-auth gate does not serve, saying what
// it is: someone who meant to proxy an app forgot the upstream.
func notFound(w http.ResponseWriter) {
	httperr.Write(w, http.StatusNotFound, "not_found", "no such path: this gate is a forward-auth endpoint (no upstream is set), "+
		"which answers "+PathAuth+" (also "+PathAuth+"/... and /), "+PathHealth+" and "+PathReady+
		"; to proxy requests to an app, give the gate an upstream (tegata gate --upstream URL)")
}

func isAuthPath(p string) bool {
	return p == "/" || p == PathAuth || strings.HasPrefix(p, PathAuth+"/")
}

// check is the forward-auth answer.
func (g *gate) check(w http.ResponseWriter, r *http.Request) {
	c, _, err := g.authenticate(r)
	if err != nil {
		g.refuse(w, r, err)
		return
	}
	g.m.outcome(outcomeAllowed)
	g.identityHeaders(r.Context(), c).apply(w.Header())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// authenticate verifies the request's token: a DPoP-bound one with its
// proof for the original request (authenticateDPoP), else from the
// Authorization header or the cookie under verifier.TokenFromRequestOrCookie's rules: a
// request whose header and cookie disagree, or with two token cookies, is
// refused, so the upstream never receives a token the gate did not check.
// The claims are the verifier's cached, immutable ones: no copy per request.
func (g *gate) authenticate(r *http.Request) (*verifier.Claims, string, error) {
	if c, raw, isDPoP, err := g.authenticateDPoP(r); isDPoP {
		if err == nil {
			err = g.sameCookie(r, raw)
		}
		return c, raw, err
	}
	raw, err := verifier.TokenFromRequestOrCookie(r, g.cfg.Cookie)
	if err != nil {
		return nil, "", err
	}
	c, err := g.v.Verify(r.Context(), raw)
	return c, raw, err
}

// sameCookie refuses a DPoP request whose token cookie (Config.Cookie)
// carries another token than its Authorization header, as
// TokenFromRequestOrCookie does for Bearer: cookies pass through to the
// upstream, which must never receive a token the gate did not check.
func (g *gate) sameCookie(r *http.Request, raw string) error {
	if g.cfg.Cookie == "" || len(r.Header.Values("Cookie")) == 0 {
		return nil
	}
	noAuth := r.Clone(r.Context())
	noAuth.Header.Del("Authorization")
	c, err := verifier.TokenFromRequestOrCookie(noAuth, g.cfg.Cookie)
	switch {
	case errors.Is(err, verifier.ErrNoToken):
		return nil
	case err != nil:
		return err
	case c != raw:
		return fmt.Errorf("%w: the Authorization header and the %s cookie carry different tokens", verifier.ErrMalformed, g.cfg.Cookie)
	}
	return nil
}

// identityHeaders builds the identity headers for verified claims, logging claims
// left out for lack of room.
func (g *gate) identityHeaders(ctx context.Context, c *verifier.Claims) *identity {
	id := newIdentity(c, g.cfg)
	if len(id.omitted) > 0 {
		g.log.DebugContext(ctx, "gate: claims left out of headers (over MaxClaimBytes)",
			"claims", id.omitted, "max_claim_bytes", g.cfg.MaxClaimBytes)
	}
	return id
}
