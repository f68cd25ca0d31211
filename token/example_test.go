package token_test

import (
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/tegata-dev/tegata/token"
)

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func claims() token.Claims {
	return token.Claims{
		Issuer:     "https://auth.example.com",
		Subject:    "user-42",
		Audience:   []string{"api.example.com"},
		IssuedAt:   now,
		Expiry:     now.Add(5 * time.Minute),
		ID:         "tok-7d1c",
		SessionID:  "sess-1",
		Generation: 1,
		Extra:      map[string]any{"roles": []string{"admin"}},
	}
}

func ExampleSign() {
	priv, err := token.GenerateKey(token.EdDSA)
	if err != nil {
		log.Fatal(err)
	}
	key := token.SigningKey{ID: "2026-01", Algorithm: token.EdDSA, Private: priv}
	raw, err := token.Sign(key, claims())
	if err != nil {
		log.Fatal(err)
	}
	header, payload, err := token.Inspect(raw)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(header["alg"], header["typ"], header["kid"], payload["sub"], payload["roles"])
	// Output: EdDSA at+jwt 2026-01 user-42 [admin]
}

func ExampleVerify() {
	// The authority signs and publishes its public keys as a JWKS.
	priv, err := token.GenerateKey(token.EdDSA)
	if err != nil {
		log.Fatal(err)
	}
	raw, err := token.Sign(token.SigningKey{ID: "2026-01", Algorithm: token.EdDSA, Private: priv}, claims())
	if err != nil {
		log.Fatal(err)
	}
	published, err := token.NewKeySet(token.PublicKey{ID: "2026-01", Algorithm: token.EdDSA, Key: priv.Public()})
	if err != nil {
		log.Fatal(err)
	}
	jwks, err := published.MarshalJWKS()
	if err != nil {
		log.Fatal(err)
	}

	// A verifier parses the JWKS once and checks every token locally.
	keys, err := token.ParseJWKS(jwks)
	if err != nil {
		log.Fatal(err)
	}
	expect := token.Expect{
		Issuer:      "https://auth.example.com",
		Audience:    "api.example.com",
		Leeway:      30 * time.Second,
		MaxLifetime: time.Hour,
	}
	c, err := token.Verify(raw, keys, expect, now.Add(time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Subject, c.SessionID, c.Generation, c.Extra["roles"])

	_, err = token.Verify(raw, keys, expect, now.Add(time.Hour))
	fmt.Println(errors.Is(err, token.ErrExpired))
	// Output:
	// user-42 sess-1 1 [admin]
	// true
}
