package ssf

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/store"
)

// Store is what a Transmitter reads and writes.
type Store interface {
	store.Streams
	store.DetailedLog
	Head(ctx context.Context) (int64, error)
}

// Keys signs Security Event Tokens and seals receivers' credentials
// (authority.Authority).
type Keys interface {
	SignEvent(ctx context.Context, payload []byte) (string, error)
	// EnsureEventKey makes the event signing key if there is none yet.
	EnsureEventKey(ctx context.Context) error
	SealReceiverSecret(secret []byte, streamID string) []byte
	OpenReceiverSecret(sealed []byte, streamID string) ([]byte, error)
}

// Config configures a Transmitter.
type Config struct {
	// Issuer is the iss of every SET and the base of the endpoints.
	Issuer string
	// InsecurePush lets push streams use http:// endpoints and loopback or
	// private addresses (development and tests). Without it an endpoint
	// must be https:// and every address it resolves to, checked when
	// connecting, public: an API key must not turn the authority into a
	// request forger against the network it runs in.
	InsecurePush bool
	// Clock is the node's clock: leases, retries, and the timers of scans
	// and long polls. Default the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Delivery timing.
const (
	leaseTTL       = 30 * time.Second // a node that stops delivering loses the stream after this
	maxBackoff     = 5 * time.Minute
	pushTimeout    = 10 * time.Second
	MinVerifyEvery = 5 * time.Second // min_verification_interval
	// scanEvery bounds how long a stream waits to be picked up when no
	// wake-up arrives (a retry falling due, another node's verification
	// request, a lease expiring).
	scanEvery = time.Second
	// idleScanEvery is how often the scans of scanEvery run while the last
	// one found no push stream enabled: one enabled since was enabled
	// through some node, which wakes its own scan, and the log's appends
	// wake every node's, so a scan without a wake-up is then only there
	// for a stream whose node stopped before delivering it, which no other
	// node may take before its lease (leaseTTL) runs out anyway.
	idleScanEvery = 5 * time.Second
)

// Transmitter publishes the revocation log to Shared Signals streams.
type Transmitter struct {
	st     Store
	keys   Keys
	cfg    Config
	node   string // lease owner name of this process
	client *http.Client

	deliveries sync.WaitGroup
	mu         sync.Mutex
	running    map[string]bool // push streams this node is delivering
	wakes      []chan struct{} // long polls waiting for events
}

// New returns a Transmitter; Run delivers push streams.
func New(st Store, keys Keys, cfg Config) *Transmitter {
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Transmitter{st: st, keys: keys, cfg: cfg, node: randomID(9),
		client: pushClient(cfg.InsecurePush), running: map[string]bool{}}
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails: crypto/rand.Read has returned no error since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

func (t *Transmitter) base() string { return strings.TrimSuffix(t.cfg.Issuer, "/") }

// Endpoint URLs.
func (t *Transmitter) ConfigurationEndpoint() string { return t.base() + "/ssf/streams" }
func (t *Transmitter) StatusEndpoint() string        { return t.base() + "/ssf/status" }
func (t *Transmitter) VerificationEndpoint() string  { return t.base() + "/ssf/verify" }
func (t *Transmitter) pollEndpoint(id string) string { return t.base() + "/ssf/poll/" + id }

// Metadata is the Transmitter Configuration Metadata of SSF 1.0 §7.1.
func (t *Transmitter) Metadata() map[string]any {
	return map[string]any{
		"spec_version":               "1_0",
		"issuer":                     t.cfg.Issuer,
		"jwks_uri":                   t.base() + "/.well-known/jwks.json",
		"delivery_methods_supported": []string{MethodPush, MethodPoll},
		"configuration_endpoint":     t.ConfigurationEndpoint(),
		"status_endpoint":            t.StatusEndpoint(),
		"verification_endpoint":      t.VerificationEndpoint(),
		// Management calls carry an API key as a Bearer token (RFC 6750).
		"authorization_schemes": []map[string]string{{"spec_urn": "urn:ietf:rfc:6750"}},
		// Every subject is in every stream; there are no add/remove
		// subject endpoints.
		"default_subjects": "ALL",
	}
}

// Error is a refusal caused by the caller's request: Status is the HTTP
// status SSF prescribes for it.
type Error struct {
	Status      int
	Code        string
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func badRequest(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: fmt.Sprintf(format, args...)}
}

func notFound(id string) error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Description: fmt.Sprintf("no stream %q", id)}
}

// stream reads a stream, mapping store.ErrNotFound to a 404 Error.
func (t *Transmitter) stream(ctx context.Context, id string) (store.Stream, error) {
	if id == "" {
		return store.Stream{}, badRequest("stream_id is required")
	}
	st, err := t.st.Stream(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Stream{}, notFound(id)
	}
	return st, err
}

// wake tells waiting long polls and the push loop that something may be
// ready.
func (t *Transmitter) wake() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ch := range t.wakes {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (t *Transmitter) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	t.mu.Lock()
	t.wakes = append(t.wakes, ch)
	t.mu.Unlock()
	return ch, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		for i, c := range t.wakes {
			if c == ch {
				t.wakes = append(t.wakes[:i], t.wakes[i+1:]...)
				return
			}
		}
	}
}
