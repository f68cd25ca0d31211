package gate

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/requestid"
	"github.com/tegata-dev/tegata/verifier"
)

// WebConfig configures web sessions (NewWeb). Every field but Authority has
// a useful zero value.
type WebConfig struct {
	// Authority creates, refreshes, lists and revokes sessions. Its API key
	// must hold the role "gate" (or "admin"). Required.
	Authority *client.Client
	// Public are the path prefixes an anonymous request may reach (it is
	// forwarded without identity). A prefix ending in "/" matches every path
	// under it; any other matches itself and the paths under it: "/login"
	// matches "/login" and "/login/totp", not "/login2". "/" makes every
	// path public (the app decides). LoginPath is always public.
	Public []string
	// LoginHandoffPaths, when set, are the only paths whose answers may sign
	// a browser in (prefixes matched as Public's): an X-Tegata-Login on the
	// answer to any other request is refused with 502 and logged, never
	// carried out. Set it when any route of the app passes through the
	// response headers of a server it does not control (an image or API
	// proxy): that server could otherwise sign anyone in, as any subject.
	// Empty: answers to any path may sign in.
	LoginHandoffPaths []string
	// LoginPath is where an anonymous browser navigation is sent, with 303
	// and ?next=<the path and query it asked for>. Empty: "/login".
	LoginPath string
	// Origin is the app's origin as browsers see it, e.g.
	// "https://app.example.com". The cross-origin check accepts it besides
	// the request's own Host, for a gate behind a proxy that rewrites Host.
	// Empty: the request's own host only.
	Origin string
	// InsecureCookies drops Secure and the __Host- prefix from the cookies,
	// for plain-http development on a host other than localhost (browsers
	// keep Secure cookies on http://localhost and 127.0.0.1 already).
	InsecureCookies bool
	// SameSite is the cookies' SameSite attribute: http.SameSiteLaxMode
	// (the zero value means Lax) or http.SameSiteStrictMode. None is
	// refused: the session must not ride along on cross-site requests.
	SameSite http.SameSite
	// RefreshPerAddress is how many refresh exchanges one client address
	// (an IPv6 client by its /64) may start per second, with a burst of 10
	// seconds' worth; one the authority refuses counts as 10. Each costs
	// the gate's API key budget at the authority, which an anonymous client
	// sending made-up refresh cookies would otherwise spend for everyone.
	// The address is the client's behind TrustedProxies. Zero:
	// DefaultRefreshPerAddress. Negative: no limit.
	RefreshPerAddress float64
	// UnavailablePage is the HTML sent, with 503 and Retry-After, to a
	// browser's page request when sessions cannot be checked (the verifier
	// is stale, or the authority cannot answer a needed refresh). It should
	// retry by itself (the default page reloads every 5 s). Scripts' and
	// API requests get the JSON error. Nil: a page that says so and reloads
	// every 5 s.
	UnavailablePage []byte
	// TrustedProxies are the networks of the proxies in front of the gate
	// (a TLS terminator, a load balancer) whose X-Forwarded-For is believed
	// for the client's address, which keys the per-address refresh limit
	// and, with the browser's binding cookie, the gate's memory of spent
	// refresh tokens. Nil: the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// NoDBSC stops offering Device Bound Session Credentials at sign-in
	// (docs/web.md): browsers that support it are then not asked to bind
	// their sessions to a key of their own. Sessions bound already keep
	// refreshing through DBSC. Give every gate in front of one app the
	// same setting. False (the zero value): offered.
	NoDBSC bool
	// Logger receives sign-in failures, authority trouble (Warn/Error) and
	// refused requests (Info/Debug). Nil: slog.Default().
	Logger *slog.Logger

	internalConfig
}

// defaultUnavailablePage is what a browser's page request gets while
// sessions cannot be checked: it says so and reloads every 5 seconds.
const defaultUnavailablePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Back in a moment</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32em; margin: 4em auto; padding: 0 1em">
<h1>Back in a moment</h1>
<p>Your session cannot be checked right now. This page tries again every few seconds; you stay signed in.</p>
</body></html>
`

// Defaults and fixed rules of web sessions.
const (
	DefaultLoginPath = "/login"
	// RefreshBefore: an access token this close to its expiry is refreshed
	// before the request is forwarded, so the app never sees a request
	// whose identity lapses while it works on it.
	RefreshBefore = 30 * time.Second
	// SelfServicePrefix is the path prefix the gate answers itself.
	SelfServicePrefix = "/.tegata/"
	// authorityTimeout bounds each call to the authority.
	authorityTimeout = 10 * time.Second
	// DefaultRefreshPerAddress: a browser refreshes once per access token
	// lifetime, and concurrent requests of one browser share an exchange,
	// so this covers a large office behind one address.
	DefaultRefreshPerAddress = 10
)

// Web keeps browser sessions in HttpOnly cookies in front of an app: it
// signs browsers in and out when the app asks (X-Tegata-Login,
// X-Tegata-Logout response headers), refreshes tokens transparently,
// refuses cross-origin unsafe requests, sends anonymous browsers to the
// login page and serves the user's own devices under /.tegata/. Handler
// wraps an app in-process; Config.Web puts it in front of an upstream.
//
// A Web is safe for concurrent use; the Verifier it uses must keep running
// while it serves.
type Web struct {
	v         *verifier.Verifier
	auth      *client.Client
	log       *slog.Logger
	now       func() time.Time
	jar       cookieJar
	cop       *http.CrossOriginProtection
	public    []string
	handoff   []string // LoginHandoffPaths; nil: any path
	loginPath string
	refresher *refresher
	trusted   []netip.Prefix          // WebConfig.TrustedProxies
	down      []byte                  // WebConfig.UnavailablePage
	origin    string                  // WebConfig.Origin, trimmed
	origins   originCheck             // for protocol switches in-process (Handler)
	tunnels   *tunnels                // upgraded connections, closed when their token is refused
	quiet     *httpguard.Limiter      // spaces out log lines an attacker could repeat
	noDBSC    bool                    // WebConfig.NoDBSC
	metrics   atomic.Pointer[metrics] // the gate's (New), for the DBSC counts; nil: none
}

// NewWeb checks cfg and returns the web-session layer over v, which must be
// running (see verifier.New) for as long as the Web is used.
func NewWeb(v *verifier.Verifier, cfg WebConfig) (*Web, error) {
	if v == nil || cfg.Authority == nil {
		return nil, errors.New("gate: NewWeb needs a verifier and WebConfig.Authority")
	}
	w := &Web{v: v, auth: withRequestIDs(cfg.Authority), log: cfg.Logger, now: clock.Or(cfg.Clock).Now, loginPath: cfg.LoginPath, trusted: slices.Clone(cfg.TrustedProxies),
		cop: http.NewCrossOriginProtection(), quiet: httpguard.NewLimiter(1.0/60, 1), noDBSC: cfg.NoDBSC}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.log = slog.New(requestid.LogHandler(w.log.Handler()))
	if w.down = cfg.UnavailablePage; w.down == nil {
		w.down = []byte(defaultUnavailablePage)
	}
	perAddr := cfg.RefreshPerAddress
	if perAddr == 0 {
		perAddr = DefaultRefreshPerAddress
	}
	w.refresher = newRefresher(w.auth.Refresh, httpguard.NewLimiter(perAddr, int(10*perAddr)), w.now)
	if w.loginPath == "" {
		w.loginPath = DefaultLoginPath
	}
	if !strings.HasPrefix(w.loginPath, "/") || strings.HasPrefix(w.loginPath, "//") || strings.ContainsAny(w.loginPath, "?#") {
		return nil, fmt.Errorf("gate: login path %q must be a path beginning with one /", w.loginPath)
	}
	w.tunnels = newTunnels(v, clock.Or(cfg.Clock), w.log)
	jar, err := newCookieJar(cfg.InsecureCookies, cfg.SameSite)
	if err != nil {
		return nil, err
	}
	w.jar = jar
	if origin := strings.TrimSuffix(cfg.Origin, "/"); origin != "" {
		if err := checkOrigin(origin); err != nil {
			return nil, err
		}
		if err := w.cop.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("gate: origin %q: %w", cfg.Origin, err)
		}
		w.origin = origin
	}
	if w.origins, err = newOriginCheck(w.trusted, w.origin); err != nil {
		return nil, err
	}
	for _, p := range append([]string{w.loginPath}, cfg.Public...) {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("gate: public prefix %q must begin with /", p)
		}
		w.public = append(w.public, p)
	}
	for _, p := range cfg.LoginHandoffPaths {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("gate: login handoff path %q must begin with /", p)
		}
		w.handoff = append(w.handoff, p)
	}
	return w, nil
}

// checkOrigin accepts scheme://host[:port] and nothing more, so that a
// path or a typo does not silently make the origin never match.
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("gate: origin %q must be scheme://host[:port], e.g. https://app.example.com", o)
	}
	return nil
}

// Handler returns next behind web sessions. next sees only requests that
// are signed in or go to a public path, with the verified claims in the
// context (verifier.FromContext; none on an anonymous public request),
// without any client-sent X-Tegata-* header and without the gate's
// cookies. Paths under /.tegata/ are answered by the gate.
//
// An upgrade request (a WebSocket) whose access token must be refreshed
// is answered 401 instead: a WebSocket library may write its 101 on the
// raw connection (gorilla/websocket does), where the new cookies would be
// lost. The page refreshes with a normal request and connects again.
func (w *Web) Handler(next http.Handler) http.Handler { return w.handler(next, false) }

// handler is Handler; proxied says next is the gate's
// httputil.ReverseProxy, which writes an upstream's 101 from the header
// map, so the cookies of a refresh reach the browser with it.
func (w *Web) handler(next http.Handler, proxied bool) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.serve(rw, r, next, proxied)
	})
}

func (w *Web) serve(rw http.ResponseWriter, r *http.Request, next http.Handler, proxied bool) {
	stripSpoofed(r.Header)
	if !proxied && !w.origins.allowed(r) { // the gate checked proxied ones, with its own list
		refuseUpgradeOrigin(w.log, rw, r)
		return
	}
	bt := bearerOf(r)
	if !bt.present {
		// Browsers attach cookies to cross-site requests, never an
		// Authorization header: only cookie (and anonymous) requests can be
		// forged this way, and refusing anonymous ones too stops login CSRF.
		if err := w.cop.Check(r); err != nil {
			w.refuseCrossOrigin(rw, r)
			return
		}
	}
	h := &handoff{ResponseWriter: rw, web: w, r: r, proxied: proxied}
	defer h.finish()
	if isDBSCPath(r.URL.Path) {
		w.dbsc(h, r)
		return
	}
	claims, err := w.identify(h, r, bt)
	if err != nil {
		w.refuseIdentity(h, r, err)
		return
	}
	h.claims = claims
	if claims != nil {
		r = r.WithContext(verifier.NewContext(r.Context(), claims))
	}
	switch {
	case strings.HasPrefix(r.URL.Path, SelfServicePrefix) || r.URL.Path+"/" == SelfServicePrefix:
		w.selfService(h, r)
	case claims == nil && !w.isPublic(r.URL.Path):
		w.anonymous(h, r)
	default:
		if claims != nil {
			httpguard.Relax(r, httpguard.ForwardBodyIdle) // as the plain proxy does for a verified request
		}
		w.jar.strip(r.Header)
		if claims != nil && isUpgrade(r) {
			var done func()
			r, done = w.tunnels.hold(r, h.raw, claims)
			defer done()
		}
		next.ServeHTTP(h, r)
	}
}

// bearer is the request's Authorization header as every tegata component
// reads it (verifier.TokenFromRequest).
type bearer struct {
	present bool   // a header that is not ErrNoToken: it alone authenticates the request
	raw     string // its token, when err is nil
	err     error  // malformed: the request is refused, never read by cookie
}

// bearerOf decides once, for the cross-origin check and for identify
// alike, whether the request is authenticated by its Authorization header:
// exactly when that header is not ErrNoToken. A request whose header is
// absent or empty is authenticated by its cookies, so the cross-origin
// check applies to it.
func bearerOf(r *http.Request) bearer {
	raw, err := verifier.TokenFromRequest(r)
	return bearer{present: !errors.Is(err, verifier.ErrNoToken), raw: raw, err: err}
}

// refuseCrossOrigin answers a cross-origin unsafe request that relies on
// cookies (or on none).
func (w *Web) refuseCrossOrigin(rw http.ResponseWriter, r *http.Request) {
	w.log.InfoContext(r.Context(), "gate: cross-origin request refused", "method", r.Method, "path", r.URL.Path,
		"sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "origin", r.Header.Get("Origin"), "host", r.Host)
	httperr.Write(rw, http.StatusForbidden, "forbidden", "cross-origin request refused")
}

// logSwitchHandoff: the app sent X-Tegata-Login or -Logout with a 101. A
// protocol switch never signs anyone in or out; the app's developer must
// hear that it was ignored.
func (w *Web) logSwitchHandoff(r *http.Request) {
	w.log.ErrorContext(r.Context(), "gate: the app's "+HeaderLogin+"/"+HeaderLogout+" on a protocol switch (101) is ignored; "+
		"sign in or out on a normal answer", "path", r.URL.Path, "method", r.Method)
}
