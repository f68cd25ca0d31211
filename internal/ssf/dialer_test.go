package ssf

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

func TestPublicAddr(t *testing.T) {
	tests := []struct {
		name string
		addr string
		want bool
	}{
		{"public IPv4", "8.8.8.8", true},
		{"public IPv6", "2606:4700:4700::1111", true},
		{"public IPv4 mapped into IPv6", "::ffff:8.8.8.8", true},
		{"loopback", "127.0.0.1", false},
		{"loopback elsewhere in 127/8", "127.1.2.3", false},
		{"IPv6 loopback", "::1", false},
		{"loopback mapped into IPv6", "::ffff:127.0.0.1", false},
		{"private 10/8", "10.1.2.3", false},
		{"private 172.16/12", "172.31.255.255", false},
		{"private 192.168/16", "192.168.0.1", false},
		{"unique local IPv6", "fd00::1", false},
		{"link-local (cloud metadata)", "169.254.169.254", false},
		{"IPv6 link-local", "fe80::1", false},
		{"unspecified", "0.0.0.0", false},
		{"IPv6 unspecified", "::", false},
		{"this network", "0.1.2.3", false},
		{"carrier-grade NAT", "100.64.0.1", false},
		{"IETF protocol assignments", "192.0.0.8", false},
		{"documentation", "192.0.2.1", false},
		{"benchmarking", "198.18.0.1", false},
		{"broadcast", "255.255.255.255", false},
		{"multicast", "224.0.0.1", false},
		{"IPv6 multicast", "ff02::1", false},
		{"NAT64 of loopback", "64:ff9b::7f00:1", false},
		{"local-use NAT64", "64:ff9b:1::1", false},
		{"IPv6 documentation", "2001:db8::1", false},
		{"deprecated site-local", "fec0::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := publicAddr(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("publicAddr(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
	if publicAddr(netip.Addr{}) {
		t.Error("publicAddr(zero Addr) = true, want false")
	}
}

func TestCheckPushURL(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		insecure bool
		wantErr  string // "" means accepted
	}{
		{"https with a public name", "https://rx.example.com/events", false, ""},
		{"https with a public address", "https://8.8.8.8/events", false, ""},
		{"https with a port and query", "https://rx.example.com:8443/e?stream=1", false, ""},
		{"empty", "", false, "is required"},
		{"too long", "https://rx.example.com/" + strings.Repeat("a", maxURL), false, "longer than"},
		{"not a URL", "https://rx.example.com/%zz", false, "is not a URL"},
		{"http without insecure", "http://rx.example.com/", false, "must be an https:// URL"},
		{"http with insecure", "http://rx.example.com/", true, ""},
		{"other scheme with insecure", "ftp://rx.example.com/", true, "must be an http:// or https:// URL"},
		{"no host", "https:///events", false, "has no host"},
		{"port only", "https://:443/events", false, "has no host"},
		{"credentials", "https://user:pw@rx.example.com/", false, "must not carry credentials"},
		{"fragment", "https://rx.example.com/#frag", false, "must not have a fragment"},
		{"loopback address", "https://127.0.0.1/", false, "is not a public address"},
		{"IPv6 loopback address", "https://[::1]/", false, "is not a public address"},
		{"metadata address", "https://169.254.169.254/latest", false, "is not a public address"},
		{"private address with insecure", "http://10.0.0.1:8080/", true, ""},
		// A name is checked when connecting (TestPushClientChecksAddressDialled):
		// it may resolve elsewhere by then.
		{"name of a loopback address", "https://localhost/", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPushURL(tt.url, tt.insecure)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("checkPushURL(%q, insecure %v) = %v, want nil", tt.url, tt.insecure, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("checkPushURL(%q, insecure %v) = %v, want an error containing %q", tt.url, tt.insecure, err, tt.wantErr)
			}
		})
	}
}

// receiverServer is a real HTTP server on loopback that counts the
// connections it accepts.
func receiverServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// TestPushClientChecksAddressDialled: a host name that passes the URL
// check but resolves to loopback is refused when connecting, against the
// address actually dialled, before any byte reaches the server; with
// InsecurePush the same request gets through (so the refusal is the
// check's, not the test's).
func TestPushClientChecksAddressDialled(t *testing.T) {
	srv, conns := receiverServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	byName := "http://localhost:" + port + "/events" // resolves to 127.0.0.1 or ::1 only
	if err := checkPushURL(strings.Replace(byName, "http:", "https:", 1), false); err != nil {
		t.Fatalf("checkPushURL(%q) = %v, want nil: a name is checked when connecting", byName, err)
	}

	res, err := pushClient(false).Post(byName, "application/secevent+jwt", strings.NewReader("x"))
	if err == nil {
		res.Body.Close()
		t.Fatalf("secure push client POST %s = %s, want a refused connection", byName, res.Status)
	}
	if !errors.Is(err, errNotPublic) {
		t.Errorf("secure push client POST %s = %v, want %v", byName, err, errNotPublic)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("connections the receiver accepted from the secure client = %d, want 0", n)
	}

	res, err = pushClient(true).Post(byName, "application/secevent+jwt", strings.NewReader("x"))
	if err != nil {
		t.Fatalf("insecure push client POST %s = %v, want 202", byName, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted || conns.Load() == 0 {
		t.Errorf("insecure push client POST %s = %s after %d connections, want 202 over one", byName, res.Status, conns.Load())
	}
}

// TestPushClientFollowsNoRedirect: a receiver's redirect is the answer
// (not 2xx, so not acceptance), never a second request: a redirect could
// otherwise point the authority at any address, unchecked by the URL rules.
func TestPushClientFollowsNoRedirect(t *testing.T) {
	target, hits := receiverServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	rx, _ := receiverServer(t, http.RedirectHandler(target.URL+"/elsewhere", http.StatusTemporaryRedirect))
	res, err := pushClient(true).Post(rx.URL, "application/secevent+jwt", strings.NewReader("x"))
	if err != nil {
		t.Fatalf("POST %s = %v, want the redirect as the answer", rx.URL, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("POST %s = %s, want 307 (not followed)", rx.URL, res.Status)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("connections to the redirect's target = %d, want 0", n)
	}
}
