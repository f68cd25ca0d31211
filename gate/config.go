package gate

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tegata-dev/tegata/internal/clock"
)

// Config configures the gate. The zero value is a forward-auth endpoint that
// reads the token from the Authorization header or the "tegata_at" cookie
// and sends every application claim as a header. Its fields follow tegata's
// one configuration rule (docs/packages.md): zero or empty means the
// default, a negative number turns off what the field bounds.
type Config struct {
	// Upstream is where verified requests are forwarded, e.g.
	// http://127.0.0.1:3000; its path is prefixed to the request's. Nil: no
	// proxying, the gate is a forward-auth endpoint only.
	Upstream *url.URL
	// Transport carries the requests to Upstream. Nil: http.DefaultTransport.
	Transport http.RoundTripper
	// Cookie is the name of the cookie the token is read from when the
	// request has no Authorization header. Empty: "tegata_at".
	Cookie string
	// Claims names the application claims that are sent as
	// X-Tegata-Claim-* headers: each listed claim, always, with an empty
	// value when the token lacks it, so that a forward-auth proxy copying the
	// gate's headers overwrites any copy the client sent. Empty: every claim
	// the token carries. (No claim headers at all: MaxClaimBytes negative.)
	Claims []string
	// MaxClaimBytes bounds the total size of the claim headers (names,
	// values and framing) so that a token with large claims cannot make the
	// answer overflow a proxy's header buffer (nginx reads the whole
	// auth_request answer's header into one 4 KiB page by default). Claims
	// that do not fit are left out and X-Tegata-Claims-Truncated is set.
	// Zero: 2048; negative: no claim headers at all.
	MaxClaimBytes int
	// WebSocketOrigins are the origins (scheme://host[:port]) besides the
	// request's own host whose pages may open a WebSocket (any protocol
	// switch) through the proxy. A handshake is a GET, which browsers send
	// with the cookies from any page of the same site, so the gate refuses
	// one whose Origin header names another origin with 403. A handshake
	// without Origin (not from a browser) passes. With Web, its Origin is
	// accepted too. Nil: the request's own host only.
	WebSocketOrigins []string
	// TrustedProxies are the networks of the proxies in front of the gate
	// (a TLS terminator, a load balancer). A request whose TCP peer is in
	// one keeps that proxy's X-Forwarded-For (the gate appends the peer),
	// X-Forwarded-Proto and X-Forwarded-Host on its way upstream, and its
	// X-Forwarded-Host counts as its own host for the WebSocket origin
	// check and, without PublicURL, for DPoP proofs. Any other request's
	// forwarding headers are dropped. Give Web
	// the same list (WebConfig.TrustedProxies). Nil: none.
	TrustedProxies []netip.Prefix
	// PublicURL is the base URL clients address the protected app at
	// ("https://app.example.com"), against which DPoP proofs' htu is
	// checked: PublicURL and the original request's path. Empty: for a
	// request from TrustedProxies, that proxy's X-Forwarded-Proto and
	// X-Forwarded-Host (else its Host), which must be the host it routed
	// the request by (a forward-auth gate serving several hosts); from any
	// other peer, DPoP requests are refused, since a client writes its own
	// Host: a proof captured for another service would be good here. With
	// neither set, New logs a warning.
	PublicURL string
	// Web, with Upstream, puts web sessions (NewWeb) in front of the
	// upstream: browsers are signed in and out by the upstream's
	// X-Tegata-Login and X-Tegata-Logout answers and carry their session in
	// cookies, and Cookie is not used. New refuses Web without Upstream. Nil: tokens come from the Authorization header or Cookie.
	Web *Web
	// Metrics, when set, receives the gate's metrics: requests by outcome,
	// refusals by reason, upstream errors, and the verifier's state (stale,
	// feed lag, set size, position, keys) read at each scrape. New fails if
	// they are registered there already: give each gate its own registry.
	Metrics prometheus.Registerer
	// Logger receives one line per refused request (Info for revoked tokens
	// and stale state, Debug otherwise) and upstream failures (Warn). Nil:
	// slog.Default().
	Logger *slog.Logger

	internalConfig
}

// internalConfig carries what only tegata's own tests set: embedded
// unexported in Config and WebConfig, its field is hidden from go doc, and
// no app can build its value.
type internalConfig struct {
	// Clock is the gate's: it must be its verifier's (verifier.Config has
	// the same field), since the gate decides on the tokens the verifier
	// checked, and it runs the expiry checks of WebSockets. Nil: the wall
	// clock. Apps fake time as for the verifier (docs/packages.md).
	Clock clock.Clock
}

// Defaults.
const (
	DefaultCookie        = "tegata_at"
	DefaultMaxClaimBytes = 2048
)

// withDefaults returns c with its zero fields filled.
func (c Config) withDefaults() Config {
	if c.Cookie == "" {
		c.Cookie = DefaultCookie
	}
	if c.MaxClaimBytes == 0 {
		c.MaxClaimBytes = DefaultMaxClaimBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
