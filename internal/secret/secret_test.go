package secret

import (
	"errors"
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
