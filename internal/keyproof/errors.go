package keyproof

import "errors"

// Sentinel errors, returned wrapped with the precise reason; test with
// errors.Is. Every one means the proof is bad and stays bad.
var (
	ErrTooLarge  = errors.New("keyproof: too large")
	ErrMalformed = errors.New("keyproof: malformed")
	ErrHeader    = errors.New("keyproof: header")
	ErrAlgorithm = errors.New("keyproof: algorithm")
	ErrType      = errors.New("keyproof: type")
	ErrKey       = errors.New("keyproof: key")
	ErrSignature = errors.New("keyproof: signature")
)
