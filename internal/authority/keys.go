package authority

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/token"
)

// keyring is an immutable view of the signing keys, rebuilt on every
// reload. Which key signs is a function of time (SignFrom, RetiredAt), so
// the ring holds every candidate and picks at signing time.
type keyring struct {
	signers []signer // access token keys, by SignFrom ascending
	events  []signer // Security Event Token keys (RS256), by SignFrom ascending
	public  *token.KeySet
	jwks    []byte
	all     []store.SigningKey
	// builtAt is the instant the ring was built for, and window how long
	// retired keys stayed published then (Authority.keyWindow): which
	// keys it publishes and opens follows from all and them (see
	// unchanged).
	builtAt time.Time
	window  time.Duration
}

// sortKeys puts keys in the ring's order: SignFrom ascending, ties in the
// order given (the store's).
func sortKeys(keys []store.SigningKey) {
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].SignFrom.Before(keys[j].SignFrom) })
}

// unchanged reports whether building a ring of keys (in the ring's order)
// at now, with retired keys published for window, would give r again: the
// same keys, each published and opened as it was at r.builtAt. A node
// reloads its keys every few seconds, and nearly always finds them
// unchanged; rebuilding the ring each time opened every private half
// again and encoded the JWKS anew. Another window is another ring: the
// window follows the lifetime leases, and a key published under a
// longer one must leave the JWKS once the shorter one has passed, not at
// the next change of the keys.
func (r *keyring) unchanged(keys []store.SigningKey, now time.Time, window time.Duration) bool {
	if len(keys) != len(r.all) || window != r.window {
		return false
	}
	for i, k := range keys {
		if !sameKey(k, r.all[i]) || published(k, now, window) != published(k, r.builtAt, window) || retired(k, now) != retired(k, r.builtAt) {
			return false
		}
	}
	return true
}

// retired reports whether k no longer signs at now (buildKeyring then
// leaves its private half closed).
func retired(k store.SigningKey, now time.Time) bool {
	return !k.RetiredAt.IsZero() && !k.RetiredAt.After(now)
}

func sameKey(a, b store.SigningKey) bool {
	return a.ID == b.ID && a.Algorithm == b.Algorithm && a.Purpose == b.Purpose &&
		bytes.Equal(a.Public, b.Public) && bytes.Equal(a.PrivateEnc, b.PrivateEnc) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.SignFrom.Equal(b.SignFrom) && a.RetiredAt.Equal(b.RetiredAt)
}

type signer struct {
	key       token.SigningKey
	signFrom  time.Time
	retiredAt time.Time
}

// current returns the key that signs access tokens at now.
func (r *keyring) current(now time.Time) (token.SigningKey, bool) { return currentOf(r.signers, now) }

// currentOf returns the key that signs at now: the latest SignFrom <= now
// that is not retired yet.
func currentOf(signers []signer, now time.Time) (token.SigningKey, bool) {
	for i := len(signers) - 1; i >= 0; i-- {
		s := signers[i]
		if s.signFrom.After(now) || (!s.retiredAt.IsZero() && !s.retiredAt.After(now)) {
			continue
		}
		return s.key, true
	}
	return token.SigningKey{}, false
}

func (r *keyring) Lookup(kid string) (token.PublicKey, bool) { return r.public.Lookup(kid) }

// published reports whether a key is in JWKS at now: from creation until
// every token it signed has expired.
func published(k store.SigningKey, now time.Time, window time.Duration) bool {
	return k.RetiredAt.IsZero() || now.Before(k.RetiredAt.Add(window))
}

func (a *Authority) buildKeyring(keys []store.SigningKey, now time.Time) (*keyring, error) {
	sortKeys(keys)
	r := &keyring{all: keys, builtAt: now, window: a.keyWindow()}
	var pubs []token.PublicKey
	var eventPubs []jose.JSONWebKey
	for _, k := range keys {
		if !published(k, now, r.window) {
			continue
		}
		pub, err := x509.ParsePKIXPublicKey(k.Public)
		if err != nil {
			return nil, fmt.Errorf("authority: key %s: parse public key: %w", k.ID, err)
		}
		signers := &r.signers
		if k.Purpose == store.PurposeEvents {
			// Published for receivers of Security Event Tokens; never in the
			// key set access tokens are verified with.
			eventPubs = append(eventPubs, jose.JSONWebKey{Key: pub, KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"})
			signers = &r.events
		} else {
			pubs = append(pubs, token.PublicKey{ID: k.ID, Algorithm: k.Algorithm, Key: pub})
		}
		if retired(k, now) {
			continue // verifies only; its private half is never opened again
		}
		priv, err := a.openPrivateKey(k)
		if err != nil {
			return nil, err
		}
		*signers = append(*signers, signer{
			key:      token.SigningKey{ID: k.ID, Algorithm: k.Algorithm, Private: priv},
			signFrom: k.SignFrom, retiredAt: k.RetiredAt,
		})
	}
	set, err := token.NewKeySet(pubs...)
	if err != nil {
		return nil, fmt.Errorf("authority: key set: %w", err)
	}
	jwks, err := set.MarshalJWKS()
	if err != nil {
		return nil, fmt.Errorf("authority: marshal JWKS: %w", err)
	}
	if jwks, err = appendJWKs(jwks, eventPubs); err != nil {
		return nil, fmt.Errorf("authority: marshal JWKS: %w", err)
	}
	r.public, r.jwks = set, jwks
	return r, nil
}

// appendJWKs adds keys to a JWK Set document.
func appendJWKs(jwks []byte, keys []jose.JSONWebKey) ([]byte, error) {
	if len(keys) == 0 {
		return jwks, nil
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, err
	}
	for _, k := range keys {
		b, err := k.MarshalJSON()
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, b)
	}
	return json.Marshal(set)
}

func (a *Authority) openPrivateKey(k store.SigningKey) (crypto.Signer, error) {
	der, err := a.keySealer.open(k.PrivateEnc, []byte(k.ID))
	if err != nil {
		return nil, fmt.Errorf("authority: key %s: %w", k.ID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("authority: key %s: parse private key: %w", k.ID, err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("authority: key %s: unsupported private key type %T", k.ID, priv)
	}
	return s, nil
}

// noteAlgorithm logs when the key that signs now uses another algorithm
// than the configured one: keys keep the algorithm they were made with, so
// the configured one takes effect at the next rotation.
func (a *Authority) noteAlgorithm() {
	k, ok := a.ring().current(a.cfg.Clock.Now())
	if ok && k.Algorithm != a.cfg.Algorithm {
		a.log.Warn("the signing key uses another algorithm than configured; the configured one applies from the next key rotation",
			"kid", k.ID, "key_alg", k.Algorithm, "configured_alg", a.cfg.Algorithm)
	}
}

// ReloadKeys re-reads the signing keys; Run does so every few seconds, so
// rotations made by other nodes and publish delays take effect.
func (a *Authority) ReloadKeys(ctx context.Context) error { return a.reloadKeys(ctx) }

// reloadKeys reads the key table and swaps in a new keyring; it creates the
// first key when there is none.
func (a *Authority) reloadKeys(ctx context.Context) error {
	keys, err := a.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("authority: list keys: %w", err)
	}
	now := a.cfg.Clock.Now()
	if !slices.ContainsFunc(keys, func(k store.SigningKey) bool { return k.Purpose == "" }) {
		// No verifier can know any key yet, so the first one signs at once.
		// Nodes starting together on an empty store each try; one adds.
		k, err := a.newKey("", now)
		if err != nil {
			return err
		}
		added, err := a.store.AddFirstKey(ctx, k, store.Actor{By: "system", Reason: "first start"})
		if err != nil {
			return fmt.Errorf("authority: store first key: %w", err)
		}
		if added {
			a.log.Info("signing key added", "kid", k.ID, "alg", k.Algorithm, "sign_from", now.UTC(), "reason", "first start")
		}
		return a.reloadKeys(ctx)
	}
	if cur := a.ring(); cur != nil {
		sortKeys(keys)
		if cur.unchanged(keys, now, a.keyWindow()) {
			return nil
		}
	}
	ring, err := a.buildKeyring(keys, now)
	if err != nil {
		return err
	}
	a.keys.Store(ring)
	return nil
}

func (a *Authority) addKey(ctx context.Context, purpose string, signFrom time.Time, actor store.Actor) (store.SigningKey, error) {
	k, err := a.newKey(purpose, signFrom)
	if err != nil {
		return store.SigningKey{}, err
	}
	if err := a.store.AddKey(ctx, k, actor); err != nil {
		return store.SigningKey{}, fmt.Errorf("authority: store key: %w", err)
	}
	a.log.Info("signing key added", "kid", k.ID, "alg", k.Algorithm, "use", keyUse(purpose), "sign_from", signFrom.UTC())
	return k, nil
}

// newKey generates a signing key for purpose that signs from signFrom,
// sealed for the store: RSA for Security Event Tokens, the configured
// algorithm for access tokens.
func (a *Authority) newKey(purpose string, signFrom time.Time) (store.SigningKey, error) {
	alg := a.cfg.Algorithm
	var priv crypto.Signer
	var err error
	if purpose == store.PurposeEvents {
		alg = eventAlgorithm
		priv, err = rsa.GenerateKey(rand.Reader, eventKeyBits)
	} else {
		priv, err = token.GenerateKey(alg)
	}
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("authority: generate key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return store.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, err
	}
	now := a.cfg.Clock.Now()
	kid := now.UTC().Format("20060102") + "-" + randomString(6)
	return store.SigningKey{
		ID: kid, Algorithm: alg, Public: pub,
		PrivateEnc: a.keySealer.seal(der, []byte(kid)),
		CreatedAt:  now, SignFrom: signFrom, Purpose: purpose,
	}, nil
}

// Uses of keys, as operators name them.
const (
	UseAccess = "access" // access tokens and status lists
	UseEvents = "events" // Security Event Tokens
)

func keyUse(purpose string) string {
	if purpose == store.PurposeEvents {
		return UseEvents
	}
	return UseAccess
}

// RotateKey publishes a new signing key for use (UseAccess or UseEvents)
// now and signs with it once KeyPublishDelay has passed. The previous key
// stops signing then and stays in JWKS until every token it signed has
// expired. Only one rotation of a use may be pending at a time: a second
// one before the first key signs is refused (it would publish keys that
// never sign).
func (a *Authority) RotateKey(ctx context.Context, use string, actor store.Actor) (store.SigningKey, error) {
	if err := checkActor(actor); err != nil {
		return store.SigningKey{}, err
	}
	purpose := ""
	switch use {
	case "", UseAccess:
	case UseEvents:
		purpose = store.PurposeEvents
	default:
		return store.SigningKey{}, invalidRequest("use must be %q or %q", UseAccess, UseEvents)
	}
	keys, err := a.store.ListKeys(ctx)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("authority: list keys: %w", err)
	}
	now := a.cfg.Clock.Now()
	for _, k := range keys {
		if k.Purpose == purpose && k.SignFrom.After(now) {
			return store.SigningKey{}, &Error{Code: CodeConflict,
				Description: fmt.Sprintf("a rotation is already pending: key %s signs from %s", k.ID, k.SignFrom.UTC().Format(time.RFC3339))}
		}
	}
	k, err := a.addKey(ctx, purpose, now.Add(a.cfg.KeyPublishDelay), actor)
	if err != nil {
		return store.SigningKey{}, err
	}
	return k, a.reloadKeys(ctx)
}

// KeyInfo describes a signing key for operators. It never carries key
// material beyond the public key's id.
type KeyInfo struct {
	ID        string    `json:"kid"`
	Algorithm string    `json:"alg"`
	CreatedAt time.Time `json:"created_at"`
	SignFrom  time.Time `json:"sign_from"`
	RetiredAt time.Time `json:"retired_at,omitzero"`
	// Use is UseAccess (access tokens, status lists) or UseEvents
	// (Security Event Tokens).
	Use string `json:"use"`
	// State is "pending" (published, not signing yet), "active" (signing),
	// "retired" (verifying only) or "expired" (no longer published).
	State string `json:"state"`
}

// Keys lists the signing keys with their state at now.
func (a *Authority) Keys(ctx context.Context) ([]KeyInfo, error) {
	keys, err := a.store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	now := a.cfg.Clock.Now()
	active, _ := a.ring().current(now)
	activeEvents, _ := currentOf(a.ring().events, now)
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		ki := KeyInfo{ID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, SignFrom: k.SignFrom,
			RetiredAt: k.RetiredAt, Use: keyUse(k.Purpose)}
		switch {
		case k.ID == active.ID || k.ID == activeEvents.ID:
			ki.State = "active"
		case k.SignFrom.After(now):
			ki.State = "pending"
		case published(k, now, a.keyWindow()):
			ki.State = "retired"
		default:
			ki.State = "expired"
		}
		out = append(out, ki)
	}
	return out, nil
}

// JWKS returns the published key set as JSON.
func (a *Authority) JWKS() []byte { return a.ring().jwks }

func (a *Authority) ring() *keyring { return a.keys.Load() }

var errNoSigningKey = errors.New("authority: no signing key is active")
