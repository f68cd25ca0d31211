// Package verifierhook gives tegata's own packages what package verifier
// keeps out of its public API: a verifier over a key set and a revocation
// set that the caller keeps current (the authority verifying its own
// tokens; verifiertest, the test kit apps use). Its arguments name an
// internal type, so as an export of package verifier it would be an API no
// app could call.
//
// Package verifier registers its constructor when it is initialised; a
// caller names the types (verifier.Config, *verifier.Verifier) and so
// imports verifier, which is then initialised first. Safe for concurrent
// use once registered.
package verifierhook

import (
	"fmt"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/token"
)

// newLocal is package verifier's constructor, of type
// func(verifier.Config, func() token.KeyLookup, *revocation.Set) *verifier.Verifier;
// this package cannot name those types without importing verifier, which
// imports it.
var newLocal any

// Register records package verifier's local constructor.
func Register[C, V any](f func(C, func() token.KeyLookup, *revocation.Set) V) { newLocal = f }

// NewLocal returns a local verifier: NewLocal[verifier.Config,
// *verifier.Verifier](cfg, keys, set). See package verifier's newLocal for
// what cfg, keys and set mean.
func NewLocal[C, V any](cfg C, keys func() token.KeyLookup, set *revocation.Set) V {
	f, ok := newLocal.(func(C, func() token.KeyLookup, *revocation.Set) V)
	if !ok {
		panic(fmt.Sprintf("verifierhook: no local constructor of type func(%T, ...) registered", cfg))
	}
	return f(cfg, keys, set)
}
