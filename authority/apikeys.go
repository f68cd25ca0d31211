package authority

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/store"
)

// API key roles.
const (
	RoleAdmin = "admin" // every API call
	RoleFeed  = "feed"  // read-only: the feed, JWKS and introspection
)

// apiKeyCache remembers recently authenticated keys for a short time so a
// busy app backend costs no store read per request. Only hashes are kept.
type apiKeyCache struct {
	mu sync.Mutex
	m  map[[32]byte]cachedKey
}

type cachedKey struct {
	key   store.APIKey
	until time.Time
}

const apiKeyCacheTTL = 30 * time.Second

// Authenticate resolves an API key secret. It returns ErrUnauthorized for a
// missing or unknown key, and never says which.
func (a *Authority) Authenticate(ctx context.Context, secret string) (store.APIKey, error) {
	if secret == "" || len(secret) > 256 {
		return store.APIKey{}, ErrUnauthorized
	}
	hash := HashSecret(secret)
	now := a.cfg.Now()
	if k, ok := a.apiKeys.get(hash, now); ok {
		return k, nil
	}
	k, err := a.store.APIKeyByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, ErrUnauthorized
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("authority: look up API key: %w", err)
	}
	// The lookup was by hash; compare anyway so a store that matched
	// loosely (collation, prefix index) can never let another key in.
	if subtle.ConstantTimeCompare(k.Hash[:], hash[:]) != 1 {
		return store.APIKey{}, ErrUnauthorized
	}
	a.apiKeys.put(hash, k, now.Add(apiKeyCacheTTL))
	return k, nil
}

func (c *apiKeyCache) get(h [32]byte, now time.Time) (store.APIKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[h]
	if !ok || now.After(e.until) {
		return store.APIKey{}, false
	}
	return e.key, true
}

func (c *apiKeyCache) put(h [32]byte, k store.APIKey, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 10000 {
		c.m = make(map[[32]byte]cachedKey) // a crude bound: keys are few
	}
	c.m[h] = cachedKey{key: k, until: until}
}

// EnsureAPIKey stores secret (hashed) with the role unless it is already
// known: how `tegata serve` installs the key from TEGATA_API_KEY or its
// key file on every start. A known secret with another role is an error.
func (a *Authority) EnsureAPIKey(ctx context.Context, name, secret, role string) error {
	if role != RoleAdmin && role != RoleFeed {
		return fmt.Errorf("authority: unknown API key role %q", role)
	}
	if secret == "" {
		return fmt.Errorf("authority: the %s API key is empty", name)
	}
	hash := HashSecret(secret)
	if k, err := a.store.APIKeyByHash(ctx, hash); err == nil {
		// A secret moved from TEGATA_API_KEY to TEGATA_FEED_KEY must not
		// keep its admin role behind the operator's back.
		if k.Role != role {
			return fmt.Errorf("authority: the %s API key is already installed with role %q, not %q; use another secret", name, k.Role, role)
		}
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("authority: look up API key: %w", err)
	}
	k := store.APIKey{ID: newTokenID(), Name: fmt.Sprintf("%s-%x", name, hash[:4]), Hash: hash, Role: role, CreatedAt: a.cfg.Now()}
	if err := a.store.AddAPIKey(ctx, k); err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("authority: store API key: %w", err)
	}
	return nil
}
