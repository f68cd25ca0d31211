package gate

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"

	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/verifier"
)

// forward verifies the request and hands it to the reverse proxy with the
// claims in its context, where Rewrite finds them.
func (g *gate) forward(w http.ResponseWriter, r *http.Request) {
	c, raw, err := g.authenticate(r)
	if err != nil {
		g.refuse(w, r, err)
		return
	}
	g.m.outcome(outcomeAllowed)
	if isUpgrade(r) {
		var done func()
		r, done = g.tunnels.hold(r, raw, c)
		defer done()
	}
	// An authenticated upload may take as long as it needs, as long as it
	// keeps moving (when the server bounds bodies with httpguard).
	httpguard.Relax(r, httpguard.ForwardBodyIdle)
	g.proxy.ServeHTTP(w, r.WithContext(verifier.NewContext(r.Context(), c)))
}

// newProxy returns the reverse proxy to cfg.Upstream. Rewrite removes every
// X-Tegata-* header the client sent before it sets the verified ones (from
// the claims in the request's context; none for an anonymous request that
// web sessions let through), so the upstream can trust them. The Authorization header and cookies pass
// through: the upstream may want the token itself. X-Forwarded-For/-Host/
// -Proto are set from this connection; every forwarding header the client
// sent is dropped, in any spelling (stripForwarding).
func (g *gate) newProxy() *httputil.ReverseProxy {
	target := g.cfg.Upstream
	tr := g.cfg.Transport
	if tr == nil {
		// The default transport keeps 2 idle connections per host: under
		// load the gate would open a new upstream connection per request.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
		tr = t
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			stripForwarding(pr.Out.Header)
			g.setForwarded(pr)
			stripSpoofed(pr.Out.Header)
			if c, ok := verifier.FromContext(pr.In.Context()); ok {
				g.identityHeaders(pr.In.Context(), c).apply(pr.Out.Header)
			}
		},
		Transport:    tr,
		ErrorLog:     slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		ErrorHandler: g.upstreamError,
	}
	p.ModifyResponse = func(resp *http.Response) error {
		dropEchoedID(resp)
		if g.cfg.Web != nil {
			return g.cfg.Web.upstreamResponse(resp)
		}
		return nil
	}
	return p
}

// setForwarded sets X-Forwarded-For, -Host and -Proto from this
// connection. When it comes from a trusted proxy (Config.TrustedProxies),
// the proxy's X-Forwarded-For is kept and this hop appended, and its
// X-Forwarded-Host and -Proto are passed on: behind a TLS terminator the
// app then sees https and the host the browser asked for.
func (g *gate) setForwarded(pr *httputil.ProxyRequest) {
	trusted := httpguard.FromTrustedProxy(pr.In, g.cfg.TrustedProxies)
	if trusted {
		if xff := pr.In.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			pr.Out.Header.Set("X-Forwarded-For", strings.Join(xff, ", "))
		}
	}
	pr.SetXForwarded()
	if !trusted {
		return
	}
	if p := pr.In.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		pr.Out.Header.Set("X-Forwarded-Proto", p)
	}
	if h := pr.In.Header.Get("X-Forwarded-Host"); h != "" {
		pr.Out.Header.Set("X-Forwarded-Host", h)
	}
}

// upstreamError answers 502 when the upstream could not be reached or
// failed mid-answer. A client that went away is not the upstream's fault and
// is logged at Debug only.
func (g *gate) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	level := slog.LevelWarn
	if errors.Is(err, context.Canceled) {
		level = slog.LevelDebug
	} else {
		g.m.upstreamError()
	}
	g.log.Log(r.Context(), level, "gate: upstream request failed", "err", err,
		"method", r.Method, "path", r.URL.Path)
	httperr.Write(w, http.StatusBadGateway, "bad_gateway", "upstream unavailable")
}

// badPath refuses a path with dot segments (see hasDotSegment).
func badPath(w http.ResponseWriter) {
	httperr.Write(w, http.StatusBadRequest, httperr.InvalidRequest, "the request path has a . or .. segment")
}

// hasDotSegment reports whether a request path has a "." or ".." segment,
// which the upstream would resolve after the gate joined the path to the
// upstream's prefix: /../admin would leave /app for /admin. The path is the
// decoded one, so %2e%2e counts as well, and so does a segment ending at
// '\', which some servers read as a separator, or at ';', where servlet
// containers (Tomcat, Jetty) end a segment's path parameters: they read
// /login/..;/admin as /admin. Browsers resolve dot segments before
// sending, so no honest client is refused.
func hasDotSegment(p string) bool {
	for seg := range strings.FieldsFuncSeq(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		seg, _, _ = strings.Cut(seg, ";")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
