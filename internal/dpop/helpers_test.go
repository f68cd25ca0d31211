package dpop

import (
	"encoding/base64"
	"strings"
	"testing"
)

func splitDots(s string) []string { return strings.Split(s, ".") }

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
