package authority

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// API key roles.
const (
	RoleAdmin = "admin" // every API call
	RoleFeed  = "feed"  // read-only: the feed, JWKS and introspection
	// RoleGate is a web gate's: what RoleFeed may, plus create, list and
	// revoke sessions (and sign a subject out everywhere); never signing
	// keys, API keys, the audit trail or a subject's claims.
	RoleGate = "gate"
)

// ValidRole reports whether role names an API key role.
func ValidRole(role string) bool {
	return role == RoleAdmin || role == RoleFeed || role == RoleGate
}

// MaxAPIKeyNameLen caps an API key's name.
const MaxAPIKeyNameLen = 64

// APIKeyCacheTTL is how long an authenticated key is trusted without
// asking the store again. Revoking a key evicts it from the revoking node's
// cache at once; every other authority node may go on accepting it for up
// to this long: the bound on how late an API key revocation bites across a
// cluster (docs/api.md states it). 5 s costs one store read per key per
// node every 5 s, nothing next to the requests it spares.
const APIKeyCacheTTL = 5 * time.Second

// apiKeyCache remembers recently authenticated keys for a short time so a
// busy app backend costs no store read per request. Only hashes are kept.
type apiKeyCache struct {
	mu sync.Mutex
	m  map[[32]byte]cachedKey
	// gen counts evictions. A lookup that began before an eviction must not
	// cache what it read: it may be the key just revoked.
	gen uint64
}

type cachedKey struct {
	key   store.APIKey
	until time.Time
}

// ErrAPIKeyRevoked: EnsureAPIKey was given the secret of a revoked key.
var ErrAPIKeyRevoked = errors.New("authority: API key revoked")

// APIKeyInfo describes an API key for operators: never its hash or secret.
type APIKeyInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

func apiKeyInfo(k store.APIKey) APIKeyInfo {
	return APIKeyInfo{ID: k.ID, Name: k.Name, Role: k.Role, CreatedAt: k.CreatedAt.UTC()}
}

// Authenticate resolves an API key secret. It returns ErrUnauthorized for a
// missing, unknown or revoked key, and never says which.
func (a *Authority) Authenticate(ctx context.Context, secret string) (store.APIKey, error) {
	if secret == "" || len(secret) > 256 {
		return store.APIKey{}, ErrUnauthorized
	}
	hash := HashSecret(secret)
	now := a.cfg.Clock.Now()
	k, gen, ok := a.apiKeys.get(hash, now)
	if ok {
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
	a.apiKeys.put(hash, k, now.Add(APIKeyCacheTTL), gen)
	return k, nil
}

// CreateAPIKey makes a new key and returns it with its secret, which is
// stored only as a hash: this is the one time anyone sees it.
func (a *Authority) CreateAPIKey(ctx context.Context, name, role string, actor store.Actor) (APIKeyInfo, string, error) {
	if err := checkAPIKeyName(name); err != nil {
		return APIKeyInfo{}, "", err
	}
	if !ValidRole(role) {
		return APIKeyInfo{}, "", invalidRequest("role must be %q, %q or %q", RoleAdmin, RoleFeed, RoleGate)
	}
	if err := checkActor(actor); err != nil {
		return APIKeyInfo{}, "", err
	}
	secret := NewAPIKey()
	k := store.APIKey{ID: newTokenID(), Name: name, Hash: HashSecret(secret), Role: role, CreatedAt: a.cfg.Clock.Now()}
	err := a.store.AddAPIKey(ctx, k, actor)
	if errors.Is(err, store.ErrConflict) {
		// ID and hash are random (128 and 256 bits): the name it is.
		return APIKeyInfo{}, "", a.nameTaken(ctx, name)
	}
	if err != nil {
		return APIKeyInfo{}, "", fmt.Errorf("authority: store API key: %w", err)
	}
	return apiKeyInfo(k), secret, nil
}

// nameTaken is the conflict of a CreateAPIKey whose name a live key has:
// it names that key, so the operator can revoke it or pick another name.
func (a *Authority) nameTaken(ctx context.Context, name string) error {
	desc := fmt.Sprintf("an API key named %q exists", name)
	if keys, err := a.store.ListAPIKeys(ctx); err == nil {
		for _, k := range keys {
			if k.Name == name {
				desc += fmt.Sprintf(" (id %s)", k.ID)
			}
		}
	}
	return &Error{Code: CodeConflict, Description: desc + "; choose another name, or revoke that key first"}
}

// APIKeys lists the live API keys, oldest first.
func (a *Authority) APIKeys(ctx context.Context) ([]APIKeyInfo, error) {
	keys, err := a.store.ListAPIKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("authority: list API keys: %w", err)
	}
	out := make([]APIKeyInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, apiKeyInfo(k))
	}
	return out, nil
}

// RevokeAPIKey revokes a key: this node refuses it before RevokeAPIKey
// returns, other nodes within APIKeyCacheTTL. The last live admin key
// cannot be revoked (CodeConflict), so the API always has an operator.
func (a *Authority) RevokeAPIKey(ctx context.Context, id string, actor store.Actor) error {
	if id == "" || len(id) > 128 || !isPlainText(id) || strings.ContainsFunc(id, isControl) {
		return invalidRequest("API key id is malformed")
	}
	if err := checkActor(actor); err != nil {
		return err
	}
	err := a.store.RevokeAPIKey(ctx, id, a.cfg.Clock.Now(), actor)
	// Evicted whatever the outcome: a failed commit may still have landed,
	// and a needless eviction costs one store read.
	a.apiKeys.evict(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Error{Code: CodeNotFound, Description: "no such API key"}
	case errors.Is(err, store.ErrLastAdminKey):
		return &Error{Code: CodeConflict, Description: "this is the last admin API key; create another admin key before revoking it"}
	case err != nil:
		return fmt.Errorf("authority: revoke API key: %w", err)
	}
	a.count.apiKey.Add(1)
	return nil
}

// checkAPIKeyName allows names that are safe in logs, tables and URLs.
func checkAPIKeyName(name string) error {
	ok := name != "" && len(name) <= MaxAPIKeyNameLen && !strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	})
	if !ok {
		return invalidRequest("name must be 1 to %d characters of A-Z a-z 0-9 . _ -", MaxAPIKeyNameLen)
	}
	return nil
}

// get returns a cached key, and the eviction count to hand to put.
func (c *apiKeyCache) get(h [32]byte, now time.Time) (store.APIKey, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[h]
	if !ok || now.After(e.until) {
		return store.APIKey{}, c.gen, false
	}
	return e.key, c.gen, true
}

// put caches a key read from the store, unless an eviction happened since
// the get that preceded the read.
func (c *apiKeyCache) put(h [32]byte, k store.APIKey, until time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) > 10000 {
		c.m = make(map[[32]byte]cachedKey) // a crude bound: keys are few
	}
	c.m[h] = cachedKey{key: k, until: until}
}

// evict forgets the key with that ID.
func (c *apiKeyCache) evict(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for h, e := range c.m {
		if e.key.ID == id {
			delete(c.m, h)
		}
	}
}

// ErrAPIKeyDiffers: EnsureAPIKey was given a secret that is not a live key
// while live keys were installed under the same name: the node's setting
// differs from the cluster's.
var ErrAPIKeyDiffers = errors.New("authority: API key differs from the cluster's")

// EnsureAPIKey stores secret (hashed) with the role unless it is already
// known: how a server installs the keys it is configured with on every
// start (named, e.g., "bootstrap" and "feed"). A known secret with another
// role is an error, and so is a revoked one (ErrAPIKeyRevoked): a restart
// must not bring a revoked key back.
//
// A node never retires the cluster's keys on its own: a secret that is not
// a live key, given while live keys were installed under the same name, is
// refused (ErrAPIKeyDiffers, naming them), since one node with a stale or
// mistyped setting would otherwise revoke the key every other node, app and
// gate uses. With replace (an operator's explicit choice, after a leak)
// the secret is installed and every other live key installed under the
// name is retired: revoked, with an audit record and a Warn log line. A
// secret that is a live key made through the API is accepted as it is:
// that is how a key rotates without downtime (create, deploy, revoke).
func (a *Authority) EnsureAPIKey(ctx context.Context, name, secret, role string, replace bool) error {
	hash := HashSecret(secret)
	if !replace {
		if err := a.sameAsInstalled(ctx, name, hash); err != nil {
			return err
		}
	}
	if err := a.ensureAPIKey(ctx, name, secret, role); err != nil {
		return err
	}
	if !replace {
		return nil
	}
	return a.retireReplaced(ctx, name, hash)
}

// sameAsInstalled refuses hash when it is neither a live key nor a revoked
// one (ensureAPIKey says so) while live keys are installed as name.
func (a *Authority) sameAsInstalled(ctx context.Context, name string, hash [32]byte) error {
	_, err := a.store.APIKeyByHash(ctx, hash)
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if revoked, err := a.store.APIKeyRevoked(ctx, hash); err != nil || revoked {
		return err
	}
	keys, err := a.store.ListAPIKeys(ctx)
	if err != nil {
		return fmt.Errorf("authority: list API keys: %w", err)
	}
	var cur []string
	for _, k := range keys {
		// The secret itself may be listed: another node installed it
		// since the lookup above.
		if k.InstalledAs == name && k.Hash != hash {
			cur = append(cur, fmt.Sprintf("%s (id %s, installed %s)", k.Name, k.ID, k.CreatedAt.UTC().Format(time.RFC3339)))
		}
	}
	if len(cur) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the %s API key this node was given is not one of the cluster's live keys; the cluster's %s key is %s",
		ErrAPIKeyDiffers, name, name, strings.Join(cur, ", "))
}

// retireReplaced revokes the keys installed as name other than keep.
func (a *Authority) retireReplaced(ctx context.Context, name string, keep [32]byte) error {
	actor := store.Actor{By: "system", Reason: "replaced at start by a new " + name + " key"}
	retired, err := a.store.RetireInstalledAPIKeys(ctx, name, keep, a.cfg.Clock.Now(), actor)
	if errors.Is(err, store.ErrNotFound) {
		// Revoked since it was installed: another node started with a
		// newer secret for the same setting and retired this one.
		return revokedKeyError(name)
	}
	if err != nil {
		return fmt.Errorf("authority: retire the replaced %s API key: %w", name, err)
	}
	for _, k := range retired {
		a.apiKeys.evict(k.ID)
		a.log.Warn("API key retired: the "+name+" key was replaced; the old secret no longer works",
			"id", k.ID, "name", k.Name, "role", k.Role)
	}
	return nil
}

func (a *Authority) ensureAPIKey(ctx context.Context, name, secret, role string) error {
	if !ValidRole(role) {
		return fmt.Errorf("authority: unknown API key role %q", role)
	}
	if secret == "" {
		return fmt.Errorf("authority: the %s API key is empty", name)
	}
	hash := HashSecret(secret)
	k := store.APIKey{ID: newTokenID(), Name: fmt.Sprintf("%s-%x", name, hash[:4]), Hash: hash, Role: role,
		CreatedAt: a.cfg.Clock.Now(), InstalledAs: name}
	actor := store.Actor{By: "system", Reason: "installed at start (" + name + " key)"}
	for conflicted := false; ; conflicted = true {
		done, err := a.installed(ctx, name, hash, role)
		if err != nil || done {
			return err
		}
		if conflicted {
			return fmt.Errorf("authority: cannot install the %s API key: a live API key is named %q; revoke it or use another secret", name, k.Name)
		}
		err = a.store.AddAPIKey(ctx, k, actor)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("authority: store API key: %w", err)
		}
		// Another node installed the same secret at this moment, someone
		// revoked it, or the name is taken: look again to say which.
	}
}

// installed reports whether hash is a live key with the role. It fails
// when the key is live with another role or was revoked.
func (a *Authority) installed(ctx context.Context, name string, hash [32]byte, role string) (bool, error) {
	k, err := a.store.APIKeyByHash(ctx, hash)
	if err == nil {
		// A secret moved from the admin setting to the feed one must not
		// keep its admin role behind the operator's back.
		if k.Role != role {
			return false, fmt.Errorf("authority: the %s API key is already installed with role %q, not %q; use another secret", name, k.Role, role)
		}
		return true, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("authority: look up API key: %w", err)
	}
	revoked, err := a.store.APIKeyRevoked(ctx, hash)
	if err != nil {
		return false, fmt.Errorf("authority: look up API key: %w", err)
	}
	if revoked {
		return false, revokedKeyError(name)
	}
	return false, nil
}

// revokedKeyError names the revoked key; the caller, which knows where
// the secret came from, tells the operator what to change.
func revokedKeyError(name string) error {
	return fmt.Errorf("%w: the %s API key was revoked (or retired when a node started with a new %s key)", ErrAPIKeyRevoked, name, name)
}
