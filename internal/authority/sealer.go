package authority

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// MasterKeySize is the length of the master key in bytes.
const MasterKeySize = 32

// ErrSealed is returned when sealed data cannot be opened: wrong master key,
// or the ciphertext was changed.
var ErrSealed = errors.New("authority: sealed data cannot be opened (wrong master key or tampered data)")

// sealer encrypts secrets at rest with AES-256-GCM under a key derived from
// the master key for one purpose, so a ciphertext of one kind can never be
// opened as another. During a master key rotation it also holds keys
// derived from the other master key: it opens with any, seals with the
// first.
type sealer struct{ aeads []cipher.AEAD }

func newSealer(master []byte, purpose string, others ...[]byte) (*sealer, error) {
	s := &sealer{}
	for _, m := range append([][]byte{master}, others...) {
		aead, err := deriveAEAD(m, purpose)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

func deriveAEAD(master []byte, purpose string) (cipher.AEAD, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("authority: master key must be %d bytes, got %d", MasterKeySize, len(master))
	}
	key, err := hkdf.Key(sha256.New, master, nil, "tegata "+purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("authority: derive %s key: %w", purpose, err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal returns nonce || ciphertext under the first master key. aad binds
// the ciphertext to its context (a key id, a token hash) so it cannot be
// moved to another row.
func (s *sealer) seal(plaintext, aad []byte) []byte {
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	rand.Read(nonce) // never fails: crypto/rand.Read has returned no error since Go 1.24
	return aead.Seal(nonce, nonce, plaintext, aad)
}

func (s *sealer) open(sealed, aad []byte) ([]byte, error) {
	pt, _, err := s.openWhich(sealed, aad)
	return pt, err
}

// openWhich opens sealed and says under which master key: 0 the first.
func (s *sealer) openWhich(sealed, aad []byte) ([]byte, int, error) {
	for i, aead := range s.aeads {
		n := aead.NonceSize()
		if len(sealed) < n+aead.Overhead() {
			return nil, 0, ErrSealed
		}
		if pt, err := aead.Open(nil, sealed[:n], sealed[n:], aad); err == nil {
			return pt, i, nil
		}
	}
	return nil, 0, ErrSealed
}
