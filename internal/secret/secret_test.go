package secret

import (
	"errors"
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"plain", "tgk_abc", "tgk_abc", nil},
		{"trailing newline (a file, a Kubernetes secret)", "tgk_abc\n", "tgk_abc", nil},
		{"CRLF and spaces", "  tgk_abc\r\n", "tgk_abc", nil},
		{"empty stays empty", " \n", "", nil},
		{"Bearer prefix", "Bearer tgk_abc", "", ErrBearer},
		{"bearer prefix, lower case", "bearer tgk_abc\n", "", ErrBearer},
		{"two lines", "tgk_abc\ntgk_def", "", ErrSpace},
		{"inner space", "tgk abc", "", ErrSpace},
		{"control character", "tgk\x00abc", "", ErrSpace},
	}
	for _, tt := range tests {
		got, err := Clean(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("%s: Clean(%q) = %q, %v, want %q, %v", tt.name, tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestIsRefreshToken(t *testing.T) {
	var r [RefreshBytes]byte
	for i := range r {
		r[i] = 0xff - byte(i)
	}
	good := NewRefreshToken(r) // starts "__7"
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{"issued", good, true},
		{"empty", "", false},
		{"one short", good[:len(good)-1], false},
		{"one long", good + "A", false},
		{"padded", good + "=", false},
		{"standard base64", strings.ReplaceAll(good, "_", "/"), false},
		{"not base64", strings.Repeat("*", len(good)), false},
		{"non-canonical last character", good[:len(good)-1] + "B", false},
	}
	for _, tt := range tests {
		if got := IsRefreshToken(tt.s); got != tt.want {
			t.Errorf("IsRefreshToken(%q) [%s] = %v, want %v", tt.s, tt.name, got, tt.want)
		}
	}
}
