package verifier

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/internal/localverifier"
	"github.com/tegata-dev/tegata/token"
)

// Config configures a Verifier. It follows tegata's one rule for
// configuration (docs/packages.md): zero means the documented default, a
// negative number turns off what the field sizes or times where off makes
// sense (Leeway, CacheSize), and New refuses a negative value for a field
// that cannot be off.
type Config struct {
	// Authorities are the base URLs of the authority nodes, e.g.
	// "https://auth.internal:8443". Discovery, JWKS, the feed and
	// introspection fail over between them. Required by New.
	Authorities []string
	// APIKey authenticates the feed and introspection requests: a key with
	// the feed role (TEGATA_FEED_KEY) is all a verifier needs, and New warns
	// about one with the admin role. Surrounding whitespace is ignored.
	// Required.
	APIKey string
	// Issuer is the expected "iss". Empty: the issuer published in the
	// openid-configuration of the first authority that answers. New warns
	// when a set value differs from the published one.
	Issuer string
	// Audience is the expected "aud". Empty: the audience the authority
	// publishes (tegata_access_token_audience in its openid-configuration),
	// so tokens are always checked against one. An authority issues one
	// audience; setting it only pins that value, and New warns when it
	// differs from the published one (every token would be refused).
	Audience string
	// Algorithms the verifier accepts: token.EdDSA, token.ES256 or both.
	// Nil: both, which accepts whatever the authority signs with: a token
	// must name a key of the authority's published key set, and its alg
	// must be that key's (so an authority started with --alg ES256, or
	// rotating from one algorithm to the other, needs no change here).
	Algorithms []string
	// Leeway is the clock skew allowed on exp and nbf. Zero: the leeway the
	// authority publishes (tegata_leeway in its openid-configuration, and
	// followed when it changes), else DefaultLeeway; negative: none. New
	// refuses a leeway larger than the authority's: the authority sends a
	// revocation only for its own leeway past the entry's expiry, so this
	// verifier would go on accepting tokens whose revocation it may never
	// have received.
	Leeway time.Duration
	// MaxLifetime is the longest exp - iat accepted. Zero: the authority's
	// tegata_access_token_max_lifetime from its openid-configuration,
	// followed when it changes (an operator raising or lowering the access
	// token lifetime), else DefaultMaxLifetime. It cannot be off: New
	// refuses a negative one.
	MaxLifetime time.Duration
	// StaleAfter is how long the verifier may go without hearing from the
	// authority (the feed heartbeats every second) before it stops trusting
	// its revocation set: then Verify fails closed with ErrStale, or asks the
	// authority when Introspect is set. Zero: DefaultStaleAfter.
	// Otherwise at least a millisecond and at most 24 hours (New refuses
	// anything else, a negative one too: the authority would refuse the
	// feed, and staleness cannot be off). An authority grants leases no longer than its own cap
	// (tegata serve --max-stale-after, default 5 minutes), so with a
	// longer bound the verifier goes stale after that cap without news.
	StaleAfter time.Duration
	// Introspect makes Verify ask the authority (POST /v1/introspect) about
	// each token while the revocation state is stale or the set is full,
	// instead of failing with ErrStale. It trades the authority's load and
	// latency for availability.
	Introspect bool
	// MaxEntries caps the revocation set. When it is full the feed pauses
	// (nothing is dropped) until pruning makes room, and meanwhile the set
	// counts as stale. Zero: DefaultMaxEntries. It cannot be off: New
	// refuses a negative one.
	MaxEntries int
	// CacheSize is how many verified tokens are remembered so that a token
	// seen again skips the signature check. Zero: DefaultCacheSize;
	// negative: no cache.
	CacheSize int
	// JWKSRefresh is how often the key set is fetched again. Zero:
	// DefaultJWKSRefresh. It cannot be off (a withdrawn key would stay
	// trusted): New refuses a negative one. A token with an unknown kid also
	// triggers a fetch, at most once every 10 seconds.
	JWKSRefresh time.Duration
	// HTTPClient makes every request to the authorities. It must not have a
	// Timeout (New refuses one): the feed is one long-lived stream. Discovery, JWKS and
	// introspection requests are bounded to 10s each regardless. Nil: a
	// copy of http.DefaultTransport for those, and the feed's default
	// client (with dial, TLS and header timeouts) for the stream, both
	// the Verifier's own, so that Close leaves no connection open.
	HTTPClient *http.Client
	// Logger receives operational logs (Warn/Info) and one Debug line per
	// rejected token. Nil: slog.Default().
	Logger *slog.Logger
	// PublicURL is the app's base URL as its clients address it
	// ("https://api.example.com"), against which the middleware checks a
	// DPoP proof's htu: PublicURL followed by the request's path. Empty:
	// the middleware refuses DPoP requests (ErrDPoP), logging why; it never
	// builds htu from the request's Host, which the client writes, so that
	// a proof captured for another service accepting the same tokens is
	// not good here. An app served under several names calls VerifyDPoP
	// itself with the URL it knows the request was for.
	PublicURL string
	// DPoPWindow is how far a DPoP proof's iat may lie from now, either
	// way; a proof's jti is remembered for twice as long, so a proof is
	// accepted once per verifier (verifiers do not share what they saw).
	// Zero: DefaultDPoPWindow. It cannot be off: New refuses a negative one.
	DPoPWindow time.Duration
	// DPoPMaxProofs bounds the memory of DPoP proofs seen (about 100 bytes
	// each): it must hold every proof accepted within 2×DPoPWindow. When it
	// is full, new proofs are refused until old ones age out, never
	// forgotten early (that would let a replay through); one key may hold
	// at most a sixteenth of it (at least 64), so a client flooding proofs
	// is refused alone. Zero:
	// DefaultDPoPMaxProofs. It cannot be off: New refuses a negative one.
	DPoPMaxProofs int
	// DPoPNonce, when positive, requires every DPoP proof to carry a nonce
	// this verifier issued (RFC 9449 §8), changing every DPoPNonce; a
	// proof without it is answered use_dpop_nonce with the nonce in
	// DPoP-Nonce. Nonces are this verifier's own: behind several, a client
	// may be asked once per verifier. Zero (the default) or negative: no
	// nonces.
	DPoPNonce time.Duration

	// Name is how the verifier appears to operators (GET /v1/verifiers),
	// next to an instance ID made at New, the host name and the version; at
	// most MaxNameLen bytes of printable UTF-8. Empty: none.
	Name string

	internalConfig
}

// internalConfig carries what only tegata's own processes set (the authority and
// verifiertest, through internal/localverifier): embedded unexported, its
// field is hidden from go doc, and no app can build its value.
type internalConfig struct {
	// Local, when set, makes New build a verifier over this key set and
	// revocation set (newLocalVerifier).
	Local *localverifier.Source
	// Clock is the verifier's one clock: its decisions (expiry, staleness,
	// leases) and its timers (pruning, key refresh, lease renewal) follow
	// it. Nil: the wall clock. Apps fake time with verifiertest or
	// testing/synctest instead (docs/packages.md).
	Clock clock.Clock
}

// settings is what a Verifier runs with: its Config with the defaults
// filled, what was derived from it, and the intervals of its background
// work. Kept apart from Config so that an app sees only what it sets.
type settings struct {
	Config
	// leewaySet and maxLifetimeSet: the caller chose the value, rather
	// than leaving it to the authority.
	leewaySet, maxLifetimeSet bool
	tuning
}

// tuning is how soon a Verifier tries an authority again, and how often a
// token with an unknown kid may fetch the key set. Tests in this package
// shorten it (newTuned), so that they need not wait for production
// intervals; zero fields mean the production values. What runs on the
// clock (pruning, the staleness watch, the key refresh) tests reach by
// moving the clock instead.
type tuning struct {
	feedRetryMin       time.Duration
	feedRetryMax       time.Duration
	unknownKidInterval time.Duration
}

func (t tuning) withDefaults() tuning {
	for _, f := range []struct {
		v *time.Duration
		d time.Duration
	}{{&t.unknownKidInterval, defaultUnknownKidInterval},
		{&t.feedRetryMin, defaultRetryMin}, {&t.feedRetryMax, defaultRetryMax}} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	t.feedRetryMax = max(t.feedRetryMax, t.feedRetryMin)
	return t
}

// Defaults of Config, exported so that commands built on the verifier (the
// gate) show and apply the same values.
const (
	DefaultLeeway      = 30 * time.Second
	DefaultMaxLifetime = time.Hour
	DefaultStaleAfter  = 10 * time.Second
	DefaultMaxEntries  = 2_000_000
	DefaultCacheSize   = 10_000
	DefaultJWKSRefresh = 5 * time.Minute
	// DefaultDPoPWindow and DefaultDPoPMaxProofs: at most 100,000 proofs
	// within 2 minutes, about 830 DPoP requests a second per verifier, in
	// about 10 MB.
	DefaultDPoPWindow    = dpop.DefaultWindow
	DefaultDPoPMaxProofs = dpop.DefaultMaxProofs
)

const (
	defaultPruneEvery = 5 * time.Second
	defaultWatchEvery = time.Second
	// unknownKidInterval bounds how often a token with an unknown kid can make
	// the verifier fetch the key set: often enough that a freshly rotated key
	// is picked up at once, rarely enough that garbage kids cannot turn the
	// verifier into a load generator against the authority.
	defaultUnknownKidInterval = 10 * time.Second
	// The backoff of the start-up and the feed.
	defaultRetryMin = 100 * time.Millisecond
	defaultRetryMax = 5 * time.Second
)

// settings returns c with every zero field given its default, and t's
// intervals. It does not fill what needs the authority (Issuer, MaxLifetime
// from discovery).
func (c Config) settings(t tuning) settings {
	if c.Algorithms == nil {
		c.Algorithms = []string{token.EdDSA, token.ES256}
	}
	s := settings{leewaySet: c.Leeway != 0, maxLifetimeSet: c.MaxLifetime > 0, tuning: t.withDefaults()}
	switch {
	case c.Leeway == 0:
		c.Leeway = DefaultLeeway
	case c.Leeway < 0:
		c.Leeway = 0
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = DefaultJWKSRefresh
	}
	c.Clock = clock.Or(c.Clock)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	s.Config = c
	return s
}

// expect is what token.Verify checks.
func (c settings) expect() token.Expect {
	return token.Expect{
		Issuer:      c.Issuer,
		Audience:    c.Audience,
		Algorithms:  c.Algorithms,
		Leeway:      c.Leeway,
		MaxLifetime: c.MaxLifetime,
		MaxSize:     token.DefaultMaxSize,
		// Bound tokens pass token.Verify; Verify refuses them without a
		// proof, VerifyDPoP checks it.
		Bound: true,
	}
}

// cleanAuthorities validates the authority base URLs and drops trailing
// slashes so that paths can be appended.
func cleanAuthorities(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("verifier: no authority configured")
	}
	out := make([]string, len(in))
	for i, s := range in {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("verifier: authority %q is not an http(s) base URL", s)
		}
		out[i] = strings.TrimRight(s, "/")
	}
	return out, nil
}
