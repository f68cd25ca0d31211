package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"math/big"
)

// The order N of P-256 and N/2, as 32-byte big-endian numbers, to range-check
// ES256 signatures without big.Int on the verify path.
var (
	p256N     = elliptic.P256().Params().N
	p256HalfN = new(big.Int).Rsh(p256N, 1)
	nBytes    = p256N.FillBytes(make([]byte, 32))
	halfN     = p256HalfN.FillBytes(make([]byte, 32))
)

// verifySignature checks sig over input with key, whose alg the header check
// has already matched. ECDSA signatures are accepted only in low-S form: the
// high-S twin of a valid signature is also mathematically valid, and refusing
// it leaves each signed token a single accepted spelling.
func verifySignature(key PublicKey, input, sig []byte) error {
	if len(sig) == 0 {
		return fmt.Errorf("%w: signature segment is empty", ErrMalformed)
	}
	switch key.Algorithm {
	case EdDSA:
		pub, ok := key.Key.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: key %q is not an Ed25519 public key", ErrAlgorithm, key.ID)
		}
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, input, sig) {
			return fmt.Errorf("%w: EdDSA signature does not verify", ErrSignature)
		}
		return nil
	case ES256:
		pub, ok := key.Key.(*ecdsa.PublicKey)
		if !ok || pub == nil || pub.Curve != elliptic.P256() {
			return fmt.Errorf("%w: key %q is not a P-256 public key", ErrAlgorithm, key.ID)
		}
		return verifyES256(pub, input, sig)
	}
	return fmt.Errorf("%w: key %q has unsupported alg %q", ErrAlgorithm, key.ID, key.Algorithm)
}

func verifyES256(pub *ecdsa.PublicKey, input, sig []byte) error {
	if len(sig) != 64 {
		return fmt.Errorf("%w: ES256 signature is %d bytes, want 64", ErrSignature, len(sig))
	}
	r, s := sig[:32], sig[32:]
	switch {
	case isZero(r) || isZero(s):
		return fmt.Errorf("%w: ES256 r or s is zero", ErrSignature)
	case bytes.Compare(r, nBytes) >= 0 || bytes.Compare(s, nBytes) >= 0:
		return fmt.Errorf("%w: ES256 r or s is not below the group order", ErrSignature)
	case bytes.Compare(s, halfN) > 0:
		return fmt.Errorf("%w: ES256 s is high (malleated signature)", ErrSignature)
	}
	digest := sha256.Sum256(input)
	var der [72]byte
	if !ecdsa.VerifyASN1(pub, digest[:], appendDERSignature(der[:0], r, s)) {
		return fmt.Errorf("%w: ES256 signature does not verify", ErrSignature)
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// appendDERSignature encodes r and s, big-endian and non-zero, as the ASN.1
// SEQUENCE { INTEGER r, INTEGER s } that crypto/ecdsa verifies. With 32-byte
// inputs every length fits one byte.
func appendDERSignature(dst, r, s []byte) []byte {
	r, s = bytes.TrimLeft(r, "\x00"), bytes.TrimLeft(s, "\x00")
	n := derIntLen(r) + derIntLen(s)
	dst = append(dst, 0x30, byte(n))
	return appendDERInt(appendDERInt(dst, r), s)
}

func derIntLen(v []byte) int {
	if v[0]&0x80 != 0 {
		return len(v) + 3
	}
	return len(v) + 2
}

func appendDERInt(dst, v []byte) []byte {
	if v[0]&0x80 != 0 {
		return append(append(dst, 0x02, byte(len(v)+1), 0), v...)
	}
	return append(append(dst, 0x02, byte(len(v))), v...)
}
