package httpguard

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr is the address of r's client: the TCP peer, or, when the peer
// is one of the trusted proxies, the right-most X-Forwarded-For address
// that is not one (each trusted proxy appends the address it received the
// request from; anything left of the first untrusted hop was written by
// the client and is ignored). A garbled hop stops the walk at the last
// address that can be trusted.
func ClientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !inPrefixes(peer, trusted) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !inPrefixes(a, trusted) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

// FromTrustedProxy reports whether r's TCP peer is one of the trusted
// proxies, whose forwarding headers may be believed.
func FromTrustedProxy(r *http.Request, trusted []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	peer, err := netip.ParseAddr(host)
	return err == nil && inPrefixes(peer, trusted)
}
