package token

import (
	"errors"
	"fmt"
)

// KeyLookup finds a verification key by kid. Lookup must be safe for
// concurrent use; Verify uses the kid only as a lookup key, so it may hold any
// bytes an attacker chose. Verify calls Lookup at most once, and a token it
// accepts was verified with the key that call returned: a cache of verified
// tokens can tie each one to that key.
type KeyLookup interface {
	Lookup(kid string) (PublicKey, bool)
}

// KeySet is an immutable set of verification keys indexed by kid. It is safe
// for concurrent use; a nil *KeySet is an empty set.
type KeySet struct {
	byID map[string]PublicKey
	keys []PublicKey // in the order given, for a stable JWKS
}

// NewKeySet checks every key (a supported alg, a key of the matching type, a
// non-empty kid used once) and returns the set. It copies the key material.
func NewKeySet(keys ...PublicKey) (*KeySet, error) {
	ks := &KeySet{byID: make(map[string]PublicKey, len(keys)), keys: make([]PublicKey, 0, len(keys))}
	for _, k := range keys {
		if k.ID == "" {
			return nil, errors.New("token: key set: key without kid")
		}
		if _, dup := ks.byID[k.ID]; dup {
			return nil, fmt.Errorf("token: key set: kid %q used twice", k.ID)
		}
		pub, err := publicKeyFor(k.Algorithm, k.Key)
		if err != nil {
			return nil, fmt.Errorf("token: key set: kid %q: %w", k.ID, err)
		}
		k.Key = pub
		ks.byID[k.ID] = k
		ks.keys = append(ks.keys, k)
	}
	return ks, nil
}

// Lookup returns the key with the given kid.
func (ks *KeySet) Lookup(kid string) (PublicKey, bool) {
	if ks == nil {
		return PublicKey{}, false
	}
	k, ok := ks.byID[kid]
	return k, ok
}

// Keys returns the keys in the order they were given. The key material is
// shared with the set and must not be modified.
func (ks *KeySet) Keys() []PublicKey {
	if ks == nil {
		return nil
	}
	return append([]PublicKey(nil), ks.keys...)
}
