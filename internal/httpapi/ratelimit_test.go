package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name, peer, xff string
		trusted         []netip.Prefix
		want            string
	}{
		{"no proxies configured: XFF ignored", "203.0.113.9:5000", "1.2.3.4", nil, "203.0.113.9"},
		{"untrusted peer: XFF ignored", "203.0.113.9:5000", "1.2.3.4", trusted, "203.0.113.9"},
		{"trusted peer: last untrusted hop", "10.1.1.1:5000", "1.2.3.4, 198.51.100.7", trusted, "198.51.100.7"},
		{"chain of trusted proxies", "10.1.1.1:5000", "198.51.100.7, 10.2.2.2", trusted, "198.51.100.7"},
		{"spoofed left-most hop ignored", "10.1.1.1:5000", "6.6.6.6, 198.51.100.7", trusted, "198.51.100.7"},
		{"garbage hop stops the walk", "10.1.1.1:5000", "198.51.100.7, junk", trusted, "10.1.1.1"},
		{"trusted peer without XFF", "10.1.1.1:5000", "", trusted, "10.1.1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := clientAddr(r, tc.trusted); got != tc.want {
				t.Fatalf("clientAddr(%s, XFF %q) = %q, want %q", tc.peer, tc.xff, got, tc.want)
			}
		})
	}
}

func TestLimiterRefillsAndForgets(t *testing.T) {
	l := newLimiter(Limit{Rate: 1, Burst: 2})
	now := time.Unix(1000, 0)
	if l.wait("a", now) != 0 || l.wait("a", now) != 0 {
		t.Fatal("burst of 2 refused")
	}
	if d := l.wait("a", now); d <= 0 {
		t.Fatalf("third event at once: wait %v, want > 0", d)
	}
	if l.wait("b", now) != 0 {
		t.Fatal("another key was limited by the first")
	}
	if d := l.wait("a", now.Add(time.Second)); d != 0 {
		t.Fatalf("after 1 s: wait %v, want 0 (refilled)", d)
	}
	l.sweep(now.Add(time.Hour))
	if len(l.m) != 0 {
		t.Fatalf("idle buckets after sweep = %d, want 0", len(l.m))
	}
}

func TestSubjectBucketsBounded(t *testing.T) {
	s := &server{perSubject: newLimiter(Limit{Rate: 1, Burst: 1}), now: time.Now}
	long := strings.Repeat("x", 1<<20) // a request path may be this long
	r := httptest.NewRequest("POST", "/v1/sessions", nil)
	if err := s.allowSubject(r, long); err != nil {
		t.Fatalf("allowSubject(1 MiB subject) = %v, want nil (the authority refuses it)", err)
	}
	if n := len(s.perSubject.m); n != 0 {
		t.Fatalf("buckets after an invalid subject = %d, want 0", n)
	}
	if err := s.allowSubject(r, "alice"); err != nil {
		t.Fatalf("allowSubject(alice) = %v, want nil", err)
	}
	if err := s.allowSubject(r, "alice"); err == nil {
		t.Fatal("second allowSubject(alice) within the burst of 1 = nil, want 429")
	}
}
