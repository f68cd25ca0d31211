package httpguard_test

import (
	"net/http/httptest"
	"testing"

	"github.com/tegata-dev/tegata/internal/httpguard"
)

func TestBearer(t *testing.T) {
	tests := []struct {
		name, header string
		want         string
		ok           bool
	}{
		{"bearer", "Bearer abc", "abc", true},
		{"scheme in any case", "bEaReR abc", "abc", true},
		{"several spaces (1*SP)", "Bearer   abc", "abc", true},
		{"no header", "", "", false},
		{"scheme alone", "Bearer", "", false},
		{"scheme and a space", "Bearer ", "", false},
		{"other scheme", "Basic dXNlcjpwdw==", "", false},
		{"token without scheme", "abc", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if got, ok := httpguard.Bearer(r); got != tt.want || ok != tt.ok {
				t.Errorf("Bearer(%q) = %q, %v, want %q, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}
