package authority

import (
	"errors"
	"fmt"
	"github.com/tegata-dev/tegata/internal/clock"
	"log/slog"
	"time"

	"github.com/tegata-dev/tegata/token"
)

// Defaults of Config, exported so that the command line shows and applies
// the same values.
const (
	DefaultAudience        = "tegata"
	DefaultAccessTTL       = 15 * time.Minute
	DefaultRefreshTTL      = 30 * 24 * time.Hour
	DefaultSessionTTL      = 90 * 24 * time.Hour
	DefaultRefreshGrace    = 10 * time.Second
	DefaultKeyPublishDelay = time.Minute
	DefaultLeeway          = 30 * time.Second
	DefaultAlgorithm       = token.EdDSA
	DefaultStatusListSize  = 1 << 20
	DefaultStatusListTTL   = time.Minute
	DefaultStatusListHold  = 5 * time.Minute
	DefaultEventRetention  = 24 * time.Hour
)

// Config tunes an Authority. It follows tegata's one configuration rule
// (docs/packages.md): zero means the documented default; a negative value
// turns off what the field times or sizes where off makes sense
// (RefreshGrace, StatusLists.Size); New refuses a negative value for every
// other field, since those cannot be off.
type Config struct {
	// Issuer is the iss claim and the base of the discovery document,
	// normally the authority's public URL. Required.
	Issuer string
	// Audience is the aud claim of access tokens. Default DefaultAudience;
	// never ConsoleAudience, the operator console's own.
	Audience string
	// AccessTTL is the lifetime of access tokens. Default DefaultAccessTTL.
	AccessTTL time.Duration
	// RefreshTTL is how long a refresh token stays usable unused (idle
	// timeout). Default DefaultRefreshTTL.
	RefreshTTL time.Duration
	// SessionTTL is the absolute lifetime of a session, however often it is
	// refreshed. Default DefaultSessionTTL.
	SessionTTL time.Duration
	// RefreshGrace is how long after a rotation the same refresh token is
	// answered with the same successor (two tabs refreshing at once) rather
	// than treated as theft. Default DefaultRefreshGrace; negative: no
	// grace window, any second use of a rotated refresh token is theft.
	RefreshGrace time.Duration
	// KeyPublishDelay is how long a new signing key is published in JWKS
	// before tokens are signed with it, so verifiers learn it first.
	// Default DefaultKeyPublishDelay.
	KeyPublishDelay time.Duration
	// Leeway is the clock skew verifiers allow. Revocation entries and
	// retired keys are kept this much longer than the access token lifetime.
	// Default DefaultLeeway.
	Leeway time.Duration
	// Algorithm signs new keys: token.EdDSA (DefaultAlgorithm) or
	// token.ES256. Keys already made keep theirs; a change takes effect at
	// the next rotation.
	Algorithm string
	// StatusLists configures the Token Status Lists access tokens refer to;
	// the zero value publishes them with the defaults.
	StatusLists StatusListConfig
	// EventRetention is how long the revocation log keeps an entry that a
	// Shared Signals stream has not received yet (a receiver that is down,
	// a paused stream). Older entries are pruned once expired, and such a
	// stream skips them. Default DefaultEventRetention.
	EventRetention time.Duration
	// DPoPNonce, when positive, requires every DPoP proof sent to sign-in
	// and refresh to carry a server nonce (RFC 9449 §8), changing every
	// DPoPNonce: a proof without a current one is answered use_dpop_nonce
	// with the nonce to sign in DPoP-Nonce, and every sign-in and refresh
	// answer carries the current nonce. Nonces are derived from the master
	// key, so every node of a cluster accepts every node's (and, during a
	// master key rotation, those of OtherMasterKeys too). A nonce is
	// accepted for one to two DPoPNonce. Zero (the default) or negative: no
	// nonces.
	DPoPNonce time.Duration
	// OtherMasterKeys open what is sealed at rest (signing keys, event
	// receiver credentials, refresh successors) but never seal: during a
	// master key rotation. Given them, New re-seals everything one of them
	// sealed under the master key it was given (reseal.go).
	OtherMasterKeys [][]byte
	// Clock tells the time and runs the timers of Run, so that a test
	// moving it moves both. Nil: the wall clock (clock.Real).
	Clock clock.Clock
	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
}

// StatusListConfig configures the Token Status Lists
// (draft-ietf-oauth-status-list): every access token carries its session
// generation's entry ("status" claim) and revocations mark entries INVALID.
type StatusListConfig struct {
	// Size is the number of entries of each new list; a multiple of 8
	// between 1024 and 2^24. Default 2^20 (128 KiB per list in memory).
	// Negative: no status lists; access tokens carry no status claim and no
	// entries are allocated.
	Size int
	// TTL is the ttl (and exp - iat) of Status List Tokens: how long a
	// Relying Party may rely on a copy. Default DefaultStatusListTTL.
	TTL time.Duration
	// Hold is how long a revoked entry stays INVALID after its revocation
	// has expired (the Leeway past the exp of every token it covers), for
	// Relying Parties that accept a token past its exp within their own
	// clock skew (Spring 60 s, ASP.NET 5 min by default). Entries are given
	// to new sessions only after it too. Default DefaultStatusListHold;
	// negative: none (INVALID until the revocation expires).
	Hold time.Duration
}

// Off reports whether status lists are off (a negative Size).
func (s StatusListConfig) Off() bool { return s.Size < 0 }

// HoldPastExpiry is how long past its revocation's expiry a revoked entry
// stays INVALID: Hold, or none when it is negative.
func (s StatusListConfig) HoldPastExpiry() time.Duration { return max(s.Hold, 0) }

// Limits of StatusListConfig.Size.
const (
	MinStatusListSize = 1024
	MaxStatusListSize = 1 << 24
)

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTTL, DefaultAccessTTL)
	def(&c.RefreshTTL, DefaultRefreshTTL)
	def(&c.SessionTTL, DefaultSessionTTL)
	def(&c.RefreshGrace, DefaultRefreshGrace)
	def(&c.KeyPublishDelay, DefaultKeyPublishDelay)
	def(&c.Leeway, DefaultLeeway)
	def(&c.StatusLists.TTL, DefaultStatusListTTL)
	def(&c.StatusLists.Hold, DefaultStatusListHold)
	def(&c.EventRetention, DefaultEventRetention)
	if c.StatusLists.Size == 0 {
		c.StatusLists.Size = DefaultStatusListSize
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	}
	c.Clock = clock.Or(c.Clock)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports what New would refuse in c once its defaults are
// filled, so that a caller can check before it opens anything.
func (c Config) Validate() error {
	c.setDefaults()
	return c.validate()
}

// validate refuses settings that would break the revocation guarantee (a
// negative lifetime, a key that signs before it is published) or say two
// things at once.
func (c *Config) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"AccessTTL", c.AccessTTL}, {"RefreshTTL", c.RefreshTTL}, {"SessionTTL", c.SessionTTL},
		{"KeyPublishDelay", c.KeyPublishDelay}, {"Leeway", c.Leeway}, {"EventRetention", c.EventRetention},
		{"StatusLists.TTL", c.StatusLists.TTL}} {
		if d.v < 0 {
			return fmt.Errorf("authority: Config.%s is negative (%v), but it cannot be off (zero: the default)", d.name, d.v)
		}
	}
	if c.Algorithm != token.EdDSA && c.Algorithm != token.ES256 {
		return fmt.Errorf("authority: Config.Algorithm %q is neither %s nor %s", c.Algorithm, token.EdDSA, token.ES256)
	}
	if c.Issuer == "" {
		return errors.New("authority: Config.Issuer is required")
	}
	if c.Audience == ConsoleAudience {
		return fmt.Errorf("authority: Config.Audience %q is the operator console's own: apps would accept the console's tokens", ConsoleAudience)
	}
	if n := c.StatusLists.Size; !c.StatusLists.Off() && (n < MinStatusListSize || n > MaxStatusListSize || n%8 != 0) {
		return fmt.Errorf("authority: Config.StatusLists.Size %d is not a multiple of 8 in [%d, %d]",
			n, MinStatusListSize, MaxStatusListSize)
	}
	if c.StatusLists.TTL < time.Second {
		return fmt.Errorf("authority: Config.StatusLists.TTL %v is under a second", c.StatusLists.TTL)
	}
	return nil
}

// slotReuseDelay is how long after a status list entry is no longer held
// it stays unallocated: lists show it INVALID for the Hold past its
// revocation's expiry, a Relying Party may hold such a list for up to a
// TTL, and node clocks may differ by up to the leeway. Without the delay, a
// new session's token could read INVALID from such a copy.
func (c *Config) slotReuseDelay() time.Duration {
	return c.StatusLists.HoldPastExpiry() + c.StatusLists.TTL + c.Leeway
}
