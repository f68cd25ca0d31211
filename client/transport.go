package client

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// maxNonceOrigins bounds the resource servers' nonces a TokenSource keeps:
// one per origin, the least recently learned forgotten first. A program
// calling more origins than this is asked for a nonce again by the ones
// forgotten, at one more round trip each.
const maxNonceOrigins = 64

// Transport returns an http.RoundTripper that sends each request through
// base (nil: http.DefaultTransport) with Authorize's headers, for an
// http.Client calling resource servers with the session's access token.
// With a DPoP key it also answers resource servers' nonces (RFC 9449 §9):
// the DPoP-Nonce of any answer is kept for its origin (scheme, host and
// port; the last 64 origins) and signed into the next proofs to it, by this
// Transport and by Authorize; a 401 use_dpop_nonce is retried once with the
// new nonce when the request's body can be sent again (no body, or
// GetBody set, as http.NewRequest does for in-memory bodies), and returned
// as it is otherwise, or when the retry is refused too. A failed refresh
// (Token's error, such as ErrInvalidGrant) fails the request, unsent.
func (s *TokenSource) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{s: s, base: base}
}

type transport struct {
	s    *TokenSource
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	origin := originOf(req.URL)
	nonce := t.s.nonceFor(origin)
	res, err := t.send(req, req.Body, nonce)
	if err != nil || t.s.opts.DPoP == nil {
		return res, err
	}
	next := t.learn(origin, res)
	if next == "" || next == nonce || !askedForNonce(res) {
		return res, nil
	}
	body, ok := replayBody(req)
	if !ok {
		return res, nil
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
	res.Body.Close()
	res, err = t.send(req, body, next)
	if err == nil {
		t.learn(origin, res)
	}
	return res, err
}

// learn keeps the DPoP-Nonce res carries, if any, as origin's, and
// returns it.
func (t *transport) learn(origin string, res *http.Response) string {
	n := res.Header.Get("DPoP-Nonce")
	if n != "" {
		t.s.keepNonce(origin, n)
	}
	return n
}

// send authorizes a copy of req (a RoundTripper leaves its request as it
// is) with body and a proof carrying nonce, and sends it.
func (t *transport) send(req *http.Request, body io.ReadCloser, nonce string) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Body = body
	if err := t.s.authorize(r, nonce); err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(r)
}

// replayBody is req's body for a second send, and whether there is one.
func replayBody(req *http.Request) (io.ReadCloser, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	b, err := req.GetBody()
	return b, err == nil
}

// askedForNonce reports whether res refuses a proof for lacking the
// server's current nonce (RFC 9449 §9: 401 with error="use_dpop_nonce").
func askedForNonce(res *http.Response) bool {
	if res.StatusCode != http.StatusUnauthorized {
		return false
	}
	for _, v := range res.Header.Values("WWW-Authenticate") {
		if strings.Contains(v, `error="use_dpop_nonce"`) {
			return true
		}
	}
	return false
}

// originOf is u's origin as a key: scheme://host:port, the default port
// written out, so that https://a and https://a:443 share a nonce.
func originOf(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// nonceFor is the last nonce origin sent, "" if none is kept.
func (s *TokenSource) nonceFor(origin string) string {
	s.nmu.Lock()
	defer s.nmu.Unlock()
	return s.nonces[origin].nonce
}

// keepNonce remembers nonce as origin's, forgetting the least recently
// learned origin when maxNonceOrigins are kept.
func (s *TokenSource) keepNonce(origin, nonce string) {
	s.nmu.Lock()
	defer s.nmu.Unlock()
	if s.nonces == nil {
		s.nonces = map[string]originNonce{}
	}
	if _, ok := s.nonces[origin]; !ok && len(s.nonces) >= maxNonceOrigins {
		oldest := ""
		for o, n := range s.nonces {
			if oldest == "" || n.seq < s.nonces[oldest].seq {
				oldest = o
			}
		}
		delete(s.nonces, oldest)
	}
	s.nseq++
	s.nonces[origin] = originNonce{nonce: nonce, seq: s.nseq}
}

type originNonce struct {
	nonce string
	seq   uint64 // when it was learned, to forget the oldest first
}
