package gate

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/verifier"
)

// errDPoPURLUnknown refuses a DPoP request when the gate cannot tell the
// URL the client addressed without believing what the client says of it.
var errDPoPURLUnknown = fmt.Errorf("%w: the gate cannot tell the URL a DPoP proof must name (htu): set --public-url "+
	"(gate.Config.PublicURL), or list the proxy in front in --trusted-proxies (Config.TrustedProxies) and have it send the host it "+
	"routed by; the request's own Host and forwarding headers are the client's to choose", verifier.ErrDPoP)

// originalRequest is the method and URL of the request a DPoP proof must
// match (RFC 9449 §4.3); ok is false when the gate cannot know the URL.
// Proxying, it is the request itself. In forward-auth mode it is the one
// the proxy asks about:
//   - nginx (auth_request): X-Original-Method and X-Original-URI, which
//     the documented configuration sets;
//   - Traefik (forwardAuth): X-Forwarded-Method and X-Forwarded-Uri;
//   - Envoy (ext_authz, HTTP service): the check request carries the
//     original method, and the original path after the path_prefix (/auth).
//
// The scheme and host are those of base.
func (g *gate) originalRequest(r *http.Request) (method, url string, ok bool) {
	base, ok := g.base(r)
	if !ok {
		return "", "", false
	}
	method, path := r.Method, r.URL.EscapedPath()
	if g.proxy == nil {
		if m := firstHeader(r, "X-Forwarded-Method", "X-Original-Method"); m != "" {
			method = m
		}
		if uri := firstHeader(r, "X-Forwarded-Uri", "X-Original-URI"); uri != "" {
			path, _, _ = strings.Cut(uri, "?")
		} else if strings.HasPrefix(path, PathAuth+"/") {
			path = strings.TrimPrefix(path, PathAuth) // Envoy: path_prefix /auth
		}
	}
	return method, base + path, true
}

// base is the scheme and host the client addressed: Config.PublicURL's;
// else, for a request from one of Config.TrustedProxies, that proxy's
// X-Forwarded-Proto (else the connection's) and X-Forwarded-Host (else its
// Host). Anything else the client could have written itself: a proof it
// captured for another service would then be good here, with that
// service's name in Host. ok is false then.
func (g *gate) base(r *http.Request) (base string, ok bool) {
	if g.cfg.PublicURL != "" {
		return strings.TrimSuffix(g.cfg.PublicURL, "/"), true
	}
	if !httpguard.FromTrustedProxy(r, g.cfg.TrustedProxies) {
		return "", false
	}
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	if h := r.Header.Get("X-Forwarded-Host"); h != "" {
		host = h
	}
	return scheme + "://" + host, true
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
	method, url, known := g.originalRequest(r)
	if !known {
		g.warnDPoPURLUnknown.Do(func() {
			g.log.Warn("gate: refusing DPoP requests: " + errDPoPURLUnknown.Error())
		})
		return nil, raw, true, errDPoPURLUnknown
	}
	c, err = g.v.VerifyDPoP(r.Context(), raw, proof, method, url)
	return c, raw, true, err
}

// logDPoPSetup says at start how the gate will know the URL a DPoP proof
// names, or that it cannot (every DPoP request refused). Web sessions read
// Bearer tokens and cookies only: nothing to say there.
func logDPoPSetup(log *slog.Logger, cfg Config) {
	switch {
	case cfg.Web != nil:
	case cfg.PublicURL != "":
		log.Info("gate: DPoP proofs must name " + strings.TrimSuffix(cfg.PublicURL, "/") + " (--public-url)")
	case len(cfg.TrustedProxies) > 0:
		log.Info("gate: DPoP proofs must name the host the proxy in front sends (X-Forwarded-Host, else Host) from --trusted-proxies; " +
			"requests from any other address with the DPoP scheme are refused")
	default:
		log.Warn("gate: DPoP-bound tokens will be refused: neither --public-url (gate.Config.PublicURL) nor --trusted-proxies " +
			"(Config.TrustedProxies) is set, so the gate cannot tell the URL a proof must name without believing the client")
	}
}
