package gate

import (
	"net/http"
	"strings"

	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/verifier"
)

// originalRequest is the method and URL of the request a DPoP proof must
// match (RFC 9449 §4.3). Proxying, it is the request itself. In
// forward-auth mode it is the one the proxy asks about:
//   - nginx (auth_request): X-Original-Method and X-Original-URI, which
//     the documented configuration sets;
//   - Traefik (forwardAuth): X-Forwarded-Method and X-Forwarded-Uri;
//   - Envoy (ext_authz, HTTP service): the check request carries the
//     original method, and the original path after the path_prefix (/auth).
//
// The scheme and host are Config.PublicURL's, else the proxy's
// X-Forwarded-Proto and X-Forwarded-Host (forward-auth: the proxy is the
// only caller; proxying: only from TrustedProxies), else the request's.
func (g *gate) originalRequest(r *http.Request) (method, url string) {
	method, path := r.Method, r.URL.EscapedPath()
	forwardAuth := g.proxy == nil
	if forwardAuth {
		if m := firstHeader(r, "X-Forwarded-Method", "X-Original-Method"); m != "" {
			method = m
		}
		if uri := firstHeader(r, "X-Forwarded-Uri", "X-Original-URI"); uri != "" {
			path, _, _ = strings.Cut(uri, "?")
		} else if strings.HasPrefix(path, PathAuth+"/") {
			path = strings.TrimPrefix(path, PathAuth) // Envoy: path_prefix /auth
		}
	}
	return method, g.base(r, forwardAuth) + path
}

func (g *gate) base(r *http.Request, forwardAuth bool) string {
	if g.cfg.PublicURL != "" {
		return strings.TrimSuffix(g.cfg.PublicURL, "/")
	}
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if forwardAuth || httpguard.FromTrustedProxy(r, g.cfg.TrustedProxies) {
		if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			scheme = p
		}
		if h := r.Header.Get("X-Forwarded-Host"); h != "" {
			host = h
		}
	}
	return scheme + "://" + host
}

func firstHeader(r *http.Request, names ...string) string {
	for _, n := range names {
		if v := r.Header.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// authenticateDPoP verifies a request with the DPoP scheme; ok is false
// when it does not use it.
func (g *gate) authenticateDPoP(r *http.Request) (c *verifier.Claims, raw string, ok bool, err error) {
	raw, proof, isDPoP, err := verifier.DPoPTokenFromRequest(r)
	if !isDPoP || err != nil {
		return nil, raw, isDPoP, err
	}
	method, url := g.originalRequest(r)
	c, err = g.v.VerifyDPoP(r.Context(), raw, proof, method, url)
	return c, raw, true, err
}
