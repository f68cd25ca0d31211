// Package httpguard protects the authority's and the gate's HTTP servers
// from clients that hold connections without using them: a cap on
// concurrent connections per client address (Listener) and a deadline on
// reading request bodies (BodyDeadline), so that a client trickling the
// body of a request no handler reads cannot keep the connection (and its
// file descriptor) forever. Long-lived answers (the feed stream) are not
// affected: a deadline only ever covers reading a body.
//
// Everything here is safe for concurrent use.
package httpguard

import (
	"net/netip"
)

// AddrKey is the key per-address limits count under: an IPv4 address, or
// the /64 of an IPv6 one, since a single host is commonly handed a whole
// /64 and could otherwise take a fresh allowance per address. Anything that
// is not an IP address is its own key.
func AddrKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
