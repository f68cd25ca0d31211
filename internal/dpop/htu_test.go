package dpop

import "testing"

func TestNormalizeURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "https://api.example/r", "https://api.example/r"},
		{"query and fragment ignored", "https://api.example/r?a=1#f", "https://api.example/r"},
		{"case of scheme and host", "HTTPS://API.Example/R", "https://api.example/R"},
		{"default https port", "https://api.example:443/r", "https://api.example/r"},
		{"default http port", "http://api.example:80/r", "http://api.example/r"},
		{"other port kept", "https://api.example:8443/r", "https://api.example:8443/r"},
		{"empty path", "https://api.example", "https://api.example/"},
		{"dot segments", "https://api.example/a/./b/../c", "https://api.example/a/c"},
		{"dot segments past the root", "https://api.example/../a", "https://api.example/a"},
		{"percent-encoded unreserved", "https://api.example/%7Euser/%61", "https://api.example/~user/a"},
		{"percent-encoding hex case", "https://api.example/a%2fb", "https://api.example/a%2Fb"},
		{"trailing slash kept", "https://api.example/r/", "https://api.example/r/"},
		{"IPv6 host", "http://[::1]:80/r", "http://[::1]/r"},
	}
	for _, tt := range tests {
		got, err := NormalizeURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeURL(%s: %q) = %q, %v; want %q", tt.name, tt.in, got, err, tt.want)
		}
	}
	for _, normal := range []string{testURL, "http://127.0.0.1:8080/v1/orders/42", "https://api.example/a;b=c/@x"} {
		if !isNormal(normal) {
			t.Errorf("isNormal(%q) = false: a URL in normal form would take the slow way", normal)
		}
	}
	for _, bad := range []string{"ftp://x/r", "/relative", "https://user:pw@api.example/r", "https://api.example/%zz", "mailto:a@b", ""} {
		if got, err := NormalizeURL(bad); err == nil {
			t.Errorf("NormalizeURL(%q) = %q, want an error", bad, got)
		}
	}
}

// FuzzNormalFastPath: whatever the allocation-free test takes as already
// normal, NormalizeURL returns unchanged, for strings and bytes alike.
func FuzzNormalFastPath(f *testing.F) {
	for _, s := range []string{"https://api.example/orders", "http://localhost:8080/a/b", "https://api.example:443/r",
		"http://a.b:80/", "https://a/./b", "https://a/%7e", "https://a/r?q#f", "https://a/(x)!$&'*+,;=:@~", "http://[::1]/",
		"https://A/r", "https://a:/r", "https://a//x/..", "https://a/..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast := isNormal(s)
		if fast != isNormal([]byte(s)) {
			t.Fatalf("isNormal(%q) differs for string and bytes", s)
		}
		if !fast {
			return
		}
		if got, err := NormalizeURL(s); err != nil || got != s {
			t.Fatalf("isNormal(%q) = true, but NormalizeURL = %q, %v", s, got, err)
		}
	})
}
