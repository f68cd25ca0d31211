package token

import (
	"fmt"

	"github.com/tegata-dev/tegata/internal/strictjson"
)

// Inspect decodes the header and payload of raw WITHOUT verifying anything
// else: for display (`tegata token inspect`), never for trust. It still
// applies DefaultMaxSize, the compact form, canonical base64url and strict
// JSON, so it reads a token the way Verify would. Numbers are float64.
func Inspect(raw string) (header, payload map[string]any, err error) {
	if len(raw) > DefaultMaxSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), DefaultMaxSize)
	}
	t, err := splitCompact(raw)
	if err != nil {
		return nil, nil, err
	}
	if header, err = strictjson.DecodeObjectValue(t.header, "header", ErrMalformed); err != nil {
		return nil, nil, err
	}
	if payload, err = strictjson.DecodeObjectValue(t.payload, "payload", ErrMalformed); err != nil {
		return nil, nil, err
	}
	return header, payload, nil
}
