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
		{"trusted peer as an IPv4-mapped IPv6 address", "[::ffff:10.1.1.1]:5000", "198.51.100.7", trusted, "198.51.100.7"},
		{"IPv6 peer", "[2001:db8::1]:5000", "1.2.3.4", trusted, "2001:db8::1"},
		{"peer without a port", "203.0.113.9", "1.2.3.4", trusted, "203.0.113.9"},
		{"XFF in several headers", "10.1.1.1:5000", "6.6.6.6\x00198.51.100.7", trusted, "198.51.100.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			for _, v := range strings.Split(tc.xff, "\x00") { // \x00 separates header lines
				if v != "" {
					r.Header.Add("X-Forwarded-For", v)
				}
			}
			if got := clientAddr(r, tc.trusted); got != tc.want {
				t.Fatalf("clientAddr(%s, XFF %q) = %q, want %q", tc.peer, tc.xff, got, tc.want)
			}
		})
	}
}

func TestSubjectBucketsBounded(t *testing.T) {
	s := &server{perSubject: newLimiter(Limit{Rate: 1, Burst: 1}), now: time.Now}
	long := strings.Repeat("x", 1<<20) // a request path may be this long
	r := httptest.NewRequest("POST", "/v1/sessions", nil)
	if err := s.allowSubject(r, long); err != nil {
		t.Fatalf("allowSubject(1 MiB subject) = %v, want nil (the authority refuses it)", err)
	}
	if n := s.perSubject.l.Len(); n != 0 {
		t.Fatalf("buckets after an invalid subject = %d, want 0", n)
	}
	if err := s.allowSubject(r, "alice"); err != nil {
		t.Fatalf("allowSubject(alice) = %v, want nil", err)
	}
	if err := s.allowSubject(r, "alice"); err == nil {
		t.Fatal("second allowSubject(alice) within the burst of 1 = nil, want 429")
	}
}
