package feed

import "net/http"

// DefaultTransport returns a new transport like the one a Client without an
// HTTPClient uses (timeouts for dialing, TLS and headers, none for the
// stream), for a caller that wraps it.
func DefaultTransport() *http.Transport { return defaultHTTPClient().Transport.(*http.Transport) }
