package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/console"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/inforce"
	"github.com/tegata-dev/tegata/internal/ssf"
	"github.com/tegata-dev/tegata/internal/store"
)

// consoleServer is the operator console: mounted on the API listener, or
// on a listener of its own (Config.ConsoleAddr).
type consoleServer struct {
	h   *console.Console // nil when the console is off
	srv *http.Server     // its own listener's server, if any
	ln  net.Listener
	tls *tls.Config
	url string
}

func newConsole(cfg Config, clk clock.Clock, a *authority.Authority, st store.Store, id store.ClusterInfo,
	cl *inforce.Cluster, tx *ssf.Transmitter, limits httpapi.Limits, apiURL string) (*consoleServer, error) {
	cs := &consoleServer{}
	if cfg.NoConsole {
		return cs, nil
	}
	h, err := console.New(console.Config{Authority: a, Store: st, InForce: cl, Streams: tx,
		Issuer: id.Issuer, Epoch: id.Epoch, NodeID: cl.NodeID(), IdleTimeout: cfg.ConsoleIdleTimeout,
		TrustedProxies: limits.TrustedProxies, Logger: cfg.Logger, Now: clk.Now})
	if err != nil {
		return nil, err
	}
	cs.h, cs.url = h, apiURL+console.Prefix
	if cfg.ConsoleAddr == "" {
		return cs, nil
	}
	if cs.ln, err = net.Listen("tcp", cfg.ConsoleAddr); err != nil {
		return nil, fmt.Errorf("listen on the console address: %w", err)
	}
	scheme := "http://"
	cs.tls = cfg.tls
	if cfg.tls != nil {
		scheme = "https://"
	}
	cs.url = scheme + cs.ln.Addr().String() + console.Prefix
	cs.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return cs, nil
}

// mount returns api with the console in front when it shares the API's
// listener.
func (cs *consoleServer) mount(api http.Handler) http.Handler {
	if cs == nil || cs.h == nil || cs.srv != nil {
		return api
	}
	return console.Mount(api, cs.h)
}

func (cs *consoleServer) serve(log *slog.Logger) {
	if err := cs.srv.Serve(tlsListener(cs.ln, cs.tls)); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("console server stopped", "err", err)
	}
}

func (cs *consoleServer) close() {
	if cs.ln != nil {
		cs.ln.Close()
	}
}
