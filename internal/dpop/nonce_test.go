package dpop

import (
	"testing"
	"time"
)

// TestSharedNonces: processes given one key accept each other's nonces; a
// process replacing the key issues under the new one and still accepts
// the old one's; nothing else is accepted.
func TestSharedNonces(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k1, k2 := [32]byte{1}, [32]byte{2}
	a, b := NewSharedNonces(time.Minute, k1), NewSharedNonces(time.Minute, k1)
	rotating := NewSharedNonces(time.Minute, k2, k1)
	tests := []struct {
		name  string
		by    *Nonces
		nonce string
		want  bool
	}{
		{"a's nonce at b", b, a.Current(now), true},
		{"a's nonce at a node replacing the key", rotating, a.Current(now), true},
		{"a replacing node's nonce at a", a, rotating.Current(now), false},
		{"another key's nonce", a, NewSharedNonces(time.Minute, k2).Current(now), false},
		{"a random key's nonce", a, NewNonces(time.Minute).Current(now), false},
	}
	for _, tt := range tests {
		if got := tt.by.valid([]byte(tt.nonce), now); got != tt.want {
			t.Errorf("%s: valid = %v, want %v", tt.name, got, tt.want)
		}
	}
	if rotating.Current(now) != NewSharedNonces(time.Minute, k2).Current(now) {
		t.Error("a node replacing the key issues under the old one, want the new")
	}
}
