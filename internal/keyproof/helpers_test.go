package keyproof

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/tegata-dev/tegata/internal/strictjson"
)

// testSigners are the keys proofs are signed with in tests: fixed for
// Ed25519 so that its proofs are reproducible, fresh for the others.
type testSigners struct {
	ed, ed2 ed25519.PrivateKey
	ec      *ecdsa.PrivateKey
	rsa     *rsa.PrivateKey
	rsa1024 *rsa.PrivateKey
}

func newSigners(tb testing.TB) testSigners {
	tb.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return testSigners{
		ed:      ed25519.NewKeyFromSeed(make([]byte, 32)),
		ed2:     ed25519.NewKeyFromSeed(append(make([]byte, 31), 1)),
		ec:      ec,
		rsa:     rk,
		rsa1024: weakRSA(tb),
	}
}

// weakRSA is a 1024-bit key, which Parse must refuse.
func weakRSA(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		tb.Fatalf("rsa.GenerateKey(1024) = %v", err)
	}
	return k
}

// signRaw signs header and payload JSON as given (however hostile) with
// signer under alg.
func signRaw(tb testing.TB, signer crypto.Signer, alg, header, payload string) string {
	tb.Helper()
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	sig, err := signInput(signer, alg, []byte(input))
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return input + "." + b64.EncodeToString(sig)
}

func jwkOf(tb testing.TB, signer crypto.Signer) string {
	tb.Helper()
	k, err := PublicKey(signer.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return string(k.JSON)
}

func thumbprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return b64.EncodeToString(sum[:])
}

// testClaims is a ClaimReader keeping the jti and counting the members.
type testClaims struct {
	jti     string
	members int
}

func (c *testClaims) read(d *strictjson.Decoder, name []byte) error {
	c.members++
	if string(name) != "jti" {
		_, err := d.Value()
		return err
	}
	s, _, err := d.StringValue()
	c.jti = string(s)
	return err
}
