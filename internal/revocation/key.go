package revocation

import "hash/maphash"

// Key is a token's session id and subject prepared for RevokedKey: decoded
// and hashed once, when the token is first verified, so that checking the
// same token again (every request of a client until it refreshes) costs
// table probes only. A Key belongs to the Set that made it.
type Key struct {
	sid, sub string
	// The session: a 16-byte key and its hash (tegataSID), or the hash of
	// an id in another format (otherSID), or nothing to check.
	sidForm      uint8
	k0, k1, sh   uint64
	subKey       uint64 // the subject's key, when sub is set
	checkSubject bool
}

const (
	noSID uint8 = iota
	tegataSID
	otherSID
)

// Key prepares sid and sub (either may be empty to skip that check) for
// RevokedKey.
func (s *Set) Key(sid, sub string) Key {
	k := Key{sid: sid, sub: sub}
	if sid != "" {
		if k0, k1, ok := decodeSID(sid); ok {
			k.sidForm, k.k0, k.k1, k.sh = tegataSID, k0, k1, hashKey(k0, k1, s.keySeed)
		} else {
			k.sidForm, k.sh = otherSID, maphash.String(s.strSeed, sid)
		}
	}
	if sub != "" {
		k.checkSubject = true
		k.subKey = s.subjectKey(sub)
	}
	return k
}

// RevokedKey is Revoked for a prepared key: whether a token of that session
// and subject, of subject generation gen, is revoked, and by which kind of
// entry. It takes no lock (see the package's doc for the one exception).
func (s *Set) RevokedKey(k *Key, gen int64) (Kind, bool) {
	switch k.sidForm {
	case tegataSID:
		if s.shardOf(k.sh).hasSession(k.k0, k.k1, k.sh) {
			return KindSession, true
		}
	case otherSID:
		if s.shardOf(k.sh).hasOtherSession(k.sid, k.sh) {
			return KindSession, true
		}
	}
	if k.checkSubject {
		if cut, ok := s.shardOf(k.subKey).cutoff(k.subKey); ok && gen < cut {
			return KindSubject, true
		}
	}
	return "", false
}

// subjectKey is sub's key in the subject tables, which places it (shard
// and slot) and tells it from others: never 0, which marks an empty slot.
func (s *Set) subjectKey(sub string) uint64 {
	return max(maphash.String(s.subSeed, sub), 1)
}
