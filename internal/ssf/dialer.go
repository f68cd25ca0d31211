package ssf

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// checkDelivery validates a delivery object and returns its endpoint URL
// (empty for poll: the transmitter supplies it).
func (t *Transmitter) checkDelivery(d DeliveryConfig) (string, error) {
	switch d.Method {
	case MethodPoll:
		if d.EndpointURL != "" {
			return "", badRequest("for poll delivery the endpoint_url is supplied by the transmitter; leave it out")
		}
		return "", nil
	case MethodPush:
	default:
		return "", badRequest("delivery.method must be %q (push) or %q (poll)", MethodPush, MethodPoll)
	}
	if err := checkPushURL(d.EndpointURL, t.cfg.InsecurePush); err != nil {
		return "", badRequest("delivery.endpoint_url: %v", err)
	}
	return d.EndpointURL, nil
}

// checkPushURL refuses what is never a valid push endpoint. Host names are
// checked when connecting, against every address they resolve to (see
// pushClient): a name that resolves to a public address now may resolve to
// a private one later.
func checkPushURL(raw string, insecure bool) error {
	if raw == "" {
		return errors.New("is required for push delivery")
	}
	if len(raw) > maxURL {
		return fmt.Errorf("is longer than %d bytes", maxURL)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "https" && !(insecure && u.Scheme == "http"):
		if insecure {
			return errors.New("must be an http:// or https:// URL")
		}
		return errors.New("must be an https:// URL (tegata serve --ssf-insecure-push allows http:// for development)")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not carry credentials; use authorization_header")
	case u.Fragment != "" || u.RawFragment != "":
		return errors.New("must not have a fragment")
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !insecure && !publicAddr(ip) {
		return fmt.Errorf("%s is not a public address (tegata serve --ssf-insecure-push allows private and loopback addresses)", ip)
	}
	return nil
}

// reserved are ranges that are neither private nor special to netip but
// still never a receiver on the internet.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: an IPv4 address in disguise
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
}

// publicAddr reports whether ip may be a push receiver on the internet:
// not loopback, private, link-local, multicast, unspecified or reserved.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// errNotPublic is what a refused connection reports.
var errNotPublic = errors.New("push endpoint resolves to an address that is not public")

// pushClient is the HTTP client of push delivery. Unless insecure, every
// connection is checked against the address actually dialled, after name
// resolution: a DNS name cannot smuggle a private address past the check
// made on the URL. No proxy (it would connect on the client's behalf,
// unchecked) and no redirects are followed.
func pushClient(insecure bool) *http.Client {
	dialer := &net.Dialer{Timeout: pushTimeout}
	if !insecure {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s", errNotPublic, address)
			}
			return nil
		}
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   pushTimeout,
			ResponseHeaderTimeout: pushTimeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		Timeout: 2 * pushTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
