package feed

import (
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"

	"github.com/tegata-dev/tegata/internal/httperr"
)

// relayPassThrough is what a relay passes to its node besides the feed,
// by path and method: what a verifier fetches from its authority (the Go
// verifier, the Node package, tegata gate without --web). Nothing else
// goes through: a relay that listens on a machine must be no way to reach
// the node's admin API, session and token endpoints from wherever the
// relay can be reached, nor a way around the node's limits per client
// address (every request through a relay comes from the relay's address,
// and the relay does not say whose it was).
var relayPassThrough = map[string][]string{
	"/.well-known/openid-configuration": {http.MethodGet, http.MethodHead},
	"/.well-known/jwks.json":            {http.MethodGet, http.MethodHead},
	// A verifier past its staleness bound may ask per token, with its
	// API key, which the node checks and limits.
	"/v1/introspect": {http.MethodPost},
}

// maxRelayPassing caps the requests a relay passes to its node at once.
// They leave from the relay's address, as its own feed and report streams
// do, and a node caps the connections it takes from one address (256 by
// default): requests that filled it would cut the relay, and every
// verifier behind it, off the feed.
const maxRelayPassing = 32

// relayProxy passes the requests of relayPassThrough to the node the
// relay follows, and refuses any other.
type relayProxy struct {
	rp    *httputil.ReverseProxy
	slots chan struct{}
}

// newProxy returns the relay's proxy: to the node its client follows (or
// last followed), else the first upstream URL. The caller's Authorization
// goes with the request (introspection needs it); its cookies, and where
// it came from, do not.
func (r *Relay) newProxy() *relayProxy {
	var transport http.RoundTripper
	if r.cfg.HTTPClient != nil {
		transport = r.cfg.HTTPClient.Transport
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			base := r.client.State().Source
			if base == "" && len(r.cfg.URLs) > 0 {
				base = r.cfg.URLs[0]
			}
			if u, err := url.Parse(base); err == nil {
				pr.SetURL(u)
			}
			pr.Out.Header.Del("Cookie")
		},
		Transport: transport,
		ErrorLog:  slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			r.log.Warn("relay: a request to the upstream failed", "err", err)
			httperr.Write(w, http.StatusBadGateway, "temporarily_unavailable", "the relay could not reach its upstream")
		},
	}
	return &relayProxy{rp: rp, slots: make(chan struct{}, maxRelayPassing)}
}

func (p *relayProxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	methods, ok := relayPassThrough[req.URL.Path]
	switch {
	case !ok:
		httperr.Write(w, http.StatusNotFound, "not_found",
			"a relay serves the feed and passes on discovery, the key set and introspection only; call the authority for anything else")
		return
	case !slices.Contains(methods, req.Method):
		w.Header().Set("Allow", strings.Join(methods, ", "))
		httperr.Write(w, http.StatusMethodNotAllowed, httperr.InvalidRequest, "no such endpoint for this method")
		return
	}
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		httperr.Write(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the relay passes on too many requests at once")
		return
	}
	p.rp.ServeHTTP(w, req)
}
