package verifier

import (
	"context"
	"errors"
	"fmt"
	"github.com/tegata-dev/tegata/internal/dpop"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/secret"
)

// This file is New's start-up: what it checks before the network, how it
// waits for an authority that is not up yet, and what it tells apart as an
// error no wait can fix.

// startLogEvery bounds how often New repeats the same "waiting for an
// authority" warning; a new error is logged at once.
const startLogEvery = 30 * time.Second

// checked validates what can be checked without the network and fills the
// defaults. The API key gets the same treatment as every secret tegata
// reads (internal/secret): trimmed, refused with "Bearer " in front.
func (c Config) checked(t tuning) (settings, error) {
	s, err := c.check()
	if err != nil {
		return settings{}, err
	}
	return s.settings(t), nil
}

func (c Config) check() (Config, error) {
	urls, err := cleanAuthorities(c.Authorities)
	if err != nil {
		return c, err
	}
	if c.HTTPClient != nil && c.HTTPClient.Timeout != 0 {
		return c, fmt.Errorf("verifier: Config.HTTPClient has a Timeout (%v), which would cut the feed's long-lived stream; "+
			"leave it zero (other requests are bounded to %v each) and bound dialing and headers in its Transport", c.HTTPClient.Timeout, requestTimeout)
	}
	key, err := secret.Clean(c.APIKey)
	if err != nil {
		return c, fmt.Errorf("verifier: Config.APIKey: %w", err)
	}
	if key == "" {
		return c, errors.New("verifier: Config.APIKey is empty: the revocation feed needs an API key (one with the feed role is enough)")
	}
	if err := checkName(c.Name); err != nil {
		return c, err
	}
	if c.StaleAfter != 0 {
		if err := feed.CheckStaleAfter(c.StaleAfter); err != nil {
			return c, fmt.Errorf("verifier: Config.StaleAfter: %w (zero: the default %v)", err, DefaultStaleAfter)
		}
	}
	if err := checkCannotBeOff(c); err != nil {
		return c, err
	}
	c.Authorities, c.APIKey = urls, key
	return c, nil
}

// checkCannotBeOff refuses a negative value (off, under the configuration
// rule) for the fields that cannot be off.
func checkCannotBeOff(c Config) error {
	for _, f := range []struct {
		name string
		neg  bool
	}{{"MaxLifetime", c.MaxLifetime < 0}, {"MaxEntries", c.MaxEntries < 0}, {"JWKSRefresh", c.JWKSRefresh < 0},
		{"DPoPWindow", c.DPoPWindow < 0}, {"DPoPMaxProofs", c.DPoPMaxProofs < 0}} {
		if f.neg {
			return fmt.Errorf("verifier: Config.%s is negative, but it cannot be off (zero: the default)", f.name)
		}
	}
	if c.PublicURL != "" {
		if _, err := dpop.NormalizeURL(c.PublicURL); err != nil {
			return fmt.Errorf("verifier: Config.PublicURL %q: %v", c.PublicURL, err)
		}
	}
	return nil
}

// fetchStart fetches the openid-configuration and the key set, retrying
// with backoff until both succeed or ctx ends. Failures are logged: the
// first one and each new error at once, the same one again every
// startLogEvery.
func fetchStart(ctx context.Context, auth *authorities, keys *keySource, cfg settings) (discovery, error) {
	var last string
	var lastLog time.Time
	var lastErr error
	for failures := 1; ; failures++ {
		d, err := auth.discover(ctx)
		if err == nil {
			err = keys.fetch(ctx)
		}
		if err == nil {
			if failures > 1 {
				cfg.Logger.Info("verifier: an authority answered", "attempts", failures)
			}
			return d, nil
		}
		if ctx.Err() != nil && lastErr != nil {
			// The start-up ended during this attempt, whose error says
			// only that; the one before says why no authority answered.
			err = lastErr
		}
		lastErr = err
		if ctx.Err() != nil {
			return d, fmt.Errorf("verifier: no authority answered before the start-up ended (%w): %w", ctx.Err(), err)
		}
		if now := cfg.Clock.Now(); err.Error() != last || now.Sub(lastLog) >= startLogEvery {
			cfg.Logger.Warn("verifier: waiting for an authority to answer", "err", err, "attempts", failures)
			last, lastLog = err.Error(), now
		}
		// The wait for an authority to come up is on the wall clock, as
		// the feed's reconnections are (feed.Client.Clock).
		t := time.NewTimer(feed.Backoff(failures, cfg.feedRetryMin, cfg.feedRetryMax))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return d, fmt.Errorf("verifier: no authority answered before the start-up ended (%w): %w", ctx.Err(), err)
		}
	}
}

// adopt fills the Issuer, Audience, MaxLifetime and Leeway that c leaves to
// the authority, refuses a Leeway larger than the authority's, and warns when c sets an issuer or audience other than the
// published one: every token that authority issues would then be refused
// as "token invalid", which a client cannot tell from a forged token.
func (c *settings) adopt(d discovery) error {
	switch {
	case c.Issuer == "" && d.Issuer == "":
		return errors.New("verifier: openid-configuration has no issuer and Config.Issuer is empty")
	case c.Issuer == "":
		c.Issuer = d.Issuer
	case d.Issuer != "" && d.Issuer != c.Issuer:
		c.Logger.Warn("verifier: the expected issuer is not the one the authority publishes; every token it issues will be refused",
			"expected", c.Issuer, "published", d.Issuer)
	}
	switch {
	case c.Audience == "":
		c.Audience = d.Audience // still "" for an authority that does not publish it
	case d.Audience != "" && d.Audience != c.Audience:
		c.Logger.Warn("verifier: the expected audience is not the one the authority puts in its tokens; every token it issues will be refused",
			"expected", c.Audience, "published", d.Audience)
	}
	if c.MaxLifetime <= 0 {
		c.MaxLifetime = DefaultMaxLifetime
		if d.MaxLifetime > 0 {
			c.MaxLifetime = time.Duration(d.MaxLifetime) * time.Second
		}
	}
	if d.Leeway <= 0 {
		return nil // an authority that does not publish it
	}
	published := time.Duration(d.Leeway) * time.Second
	switch {
	case !c.leewaySet:
		c.Leeway = published
	case c.Leeway > published:
		return fmt.Errorf("verifier: Config.Leeway %v is larger than the authority's leeway %v: the authority stops sending "+
			"a revocation %v after it expires, so this verifier could accept tokens whose revocation it never received; "+
			"leave Leeway zero to take the authority's", c.Leeway, published, published)
	}
	return nil
}

// waitOpened waits until an authority accepts the API key on the feed. A
// key every authority refuses is an error at once; an authority that does
// not answer is waited for until ctx ends. It warns about an admin key:
// a verifier needs only the feed role, and its host should hold nothing
// that can create sessions or revoke.
func (v *Verifier) waitOpened(ctx context.Context) error {
	err := v.feed.WaitOpened(ctx)
	switch {
	case errors.Is(err, feed.ErrRefused):
		return fmt.Errorf("%w: %w", ErrKeyRefused, err)
	case errors.Is(err, feed.ErrInvalid):
		return fmt.Errorf("verifier: the authority refuses this verifier's feed request: %w", err)
	case err != nil:
		return fmt.Errorf("verifier: the revocation feed did not open before the start-up ended: %w", err)
	}
	if role := v.feed.State().KeyRole; role == "admin" {
		v.log.Warn("verifier: the API key has the admin role, and an admin key on this host can create sessions and revoke: " +
			"give it the least role that does the job: feed for a verifier or a gate without --web " +
			"(tegata apikeys create --name NAME --role feed), gate for a gate with --web, which also signs browsers in " +
			"(tegata apikeys create --name NAME --role gate)")
	}
	return nil
}
