package client

import (
	"fmt"
	"net/url"
	"testing"
)

// TestNonceMemoryBound: a TokenSource keeps the nonces of at most
// maxNonceOrigins origins, forgetting the least recently learned first.
func TestNonceMemoryBound(t *testing.T) {
	s := &TokenSource{}
	for i := 0; i < maxNonceOrigins+10; i++ {
		s.keepNonce(fmt.Sprintf("https://api%d.example:443", i), fmt.Sprint("n", i))
		if i == maxNonceOrigins/2 {
			s.keepNonce("https://api0.example:443", "renewed") // learned again: now recent
		}
	}
	if len(s.nonces) != maxNonceOrigins {
		t.Errorf("nonces kept = %d, want %d", len(s.nonces), maxNonceOrigins)
	}
	for origin, want := range map[string]string{
		"https://api0.example:443":  "renewed",
		"https://api1.example:443":  "",
		"https://api10.example:443": "",
		"https://api11.example:443": "n11",
		"https://api73.example:443": "n73",
	} {
		if got := s.nonceFor(origin); got != want {
			t.Errorf("nonceFor(%q) = %q, want %q", origin, got, want)
		}
	}
}

func TestOriginOf(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"https://API.example/orders?x=1", "https://api.example:443"},
		{"https://api.example:443/", "https://api.example:443"},
		{"http://api.example/", "http://api.example:80"},
		{"http://127.0.0.1:8080/x", "http://127.0.0.1:8080"},
		{"https://[::1]/x", "https://[::1]:443"},
	} {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := originOf(u); got != tt.want {
			t.Errorf("originOf(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}
