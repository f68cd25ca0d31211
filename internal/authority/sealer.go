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
// opened as another.
type sealer struct{ aead cipher.AEAD }

func newSealer(master []byte, purpose string) (*sealer, error) {
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
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal returns nonce || ciphertext. aad binds the ciphertext to its context
// (a key id, a token hash) so it cannot be moved to another row.
func (s *sealer) seal(plaintext, aad []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	rand.Read(nonce) // never fails: crypto/rand.Read has returned no error since Go 1.24
	return s.aead.Seal(nonce, nonce, plaintext, aad)
}

func (s *sealer) open(sealed, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrSealed
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrSealed
	}
	return pt, nil
}
