package console

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/inforce"
	"github.com/tegata-dev/tegata/internal/ssf"
	"github.com/tegata-dev/tegata/internal/store"
)

// Prefix is the path the console is served under.
const Prefix = "/console/"

// DefaultIdleTimeout ends a console session after this long without a
// request.
const DefaultIdleTimeout = 15 * time.Minute

// Store is what the console reads from the store directly.
type Store interface {
	store.Console
	// Session finds a session by id (search by session id).
	Session(ctx context.Context, id string) (store.Session, int64, error)
	// Head is the revocation log's head (the overview's feed head).
	Head(ctx context.Context) (int64, error)
}

// InForce says where revocations stand on the verifiers
// (internal/inforce.Cluster).
type InForce interface {
	// Confirm waits up to wait for log position seq to be in force on
	// every verifier.
	Confirm(ctx context.Context, seq int64, wait time.Duration) inforce.Confirmation
	// List asks the verifiers for their positions (waiting up to a second)
	// and lists them.
	List(ctx context.Context) (inforce.Listing, error)
	// Current lists the verifiers as last heard, without asking.
	Current(ctx context.Context) (inforce.Listing, error)
}

// Streams lists the Shared Signals streams (internal/ssf.Transmitter).
type Streams interface {
	List(ctx context.Context) ([]ssf.StreamConfig, error)
}

// Config wires a console. Authority, Store and InForce are required.
type Config struct {
	Authority *authority.Authority
	Store     Store
	InForce   InForce
	// Streams lists the event streams on the overview. Nil: none shown.
	Streams Streams
	// Issuer, Epoch and NodeID name the cluster and this node on the
	// overview.
	Issuer, Epoch, NodeID string
	// IdleTimeout ends a session after this long without a request. Zero:
	// DefaultIdleTimeout; it cannot be off (negative is refused).
	IdleTimeout time.Duration
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client, whose address limits failed sign-ins.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger
	// Now is the clock of sessions and pages. Nil: time.Now.
	Now func() time.Time
}

// Console is the console's HTTP handler.
type Console struct {
	cfg      Config
	a        *authority.Authority
	st       Store
	log      *slog.Logger
	now      func() time.Time
	cop      *http.CrossOriginProtection
	pages    pages
	mux      *http.ServeMux
	failures *httpguard.Limiter // failed sign-ins per client address
	// refreshes are the refreshes done lately, by the refresh token they
	// spent, so that a page and its polls refreshing at once share one.
	refreshMu sync.Mutex
	refreshes map[string]refreshed
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Authority == nil || cfg.Store == nil || cfg.InForce == nil {
		return nil, errors.New("console: Config needs Authority, Store and InForce")
	}
	switch {
	case cfg.IdleTimeout < 0:
		return nil, errors.New("console: IdleTimeout cannot be off (negative)")
	case cfg.IdleTimeout == 0:
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p, err := parsedPages()
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, a: cfg.Authority, st: cfg.Store, log: cfg.Logger, now: cfg.Now,
		cop: http.NewCrossOriginProtection(), pages: p, mux: http.NewServeMux(),
		failures: httpguard.NewLimiter(1, 10), refreshes: map[string]refreshed{}}
	c.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, &pageError{status: http.StatusForbidden, msg: "Cross-origin request refused."})
	}))
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	c.mux.Handle("GET "+Prefix+"assets/", http.StripPrefix(Prefix+"assets/", serveAssets(assets)))
	for _, rt := range c.routes() {
		c.mux.Handle(rt.pattern, c.guard(rt))
	}
	c.mux.Handle(Prefix, c.guard(route{pattern: Prefix, public: true, serve: func(w http.ResponseWriter, r *http.Request, _ *operator) error {
		return &pageError{status: http.StatusNotFound, msg: "No such page."}
	}}))
	return c, nil
}

// ServeHTTP serves every path under Prefix (and Prefix without its slash).
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w.Header())
	if r.URL.Path == "/console" {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// Mount returns api with the console served under Prefix in front of it.
func Mount(api http.Handler, c *Console) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" || len(r.URL.Path) >= len(Prefix) && r.URL.Path[:len(Prefix)] == Prefix {
			c.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// secureHeaders are on every answer: only this origin's script and style,
// nothing inline, no framing, no referrer, nothing cached.
func secureHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// serveAssets serves the embedded files, cacheable for a short while.
func serveAssets(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=300")
		files.ServeHTTP(w, r)
	})
}
