// Package requestid gives every HTTP request an id, sent back in the
// X-Request-Id header and added to every log line written with the
// request's context, so that an operator finds a client's complaint in the
// logs. An incoming id is kept when it is sane (a proxy or a load balancer
// made it), else replaced. Safe for concurrent use.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
)

// Header is the request and response header carrying the id.
const Header = "X-Request-Id"

// MaxLen is the longest incoming id kept.
const MaxLen = 64

type ctxKey struct{}

// From returns the id of the request whose context ctx is, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Middleware sets the id on the response and in the request's context.
func Middleware(h http.Handler) http.Handler { return Trusting(nil, h) }

// Trusting is Middleware for a server that passes requests on (a gate): an
// incoming id is kept only when trusted (nil: any) says the request came
// from a proxy of its own, since anyone else could pick ids to muddle the
// logs; otherwise, or when it is not sane, a new one is made. The id is
// also set on the request's header, so that whatever passes the request on
// passes it too.
func Trusting(trusted func(*http.Request) bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(Header)
		if !sane(id) || trusted != nil && !trusted(r) {
			id = newID()
		}
		w.Header().Set(Header, id)
		if trusted != nil {
			r.Header.Set(Header, id)
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

// Transport sets the id of the request's context, if any, on every
// request it sends that has none: the calls a server makes on behalf of a
// request carry its id to the next server's logs. Nil next:
// http.DefaultTransport.
func Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return transport{next}
}

type transport struct{ next http.RoundTripper }

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if id := From(r.Context()); id != "" && r.Header.Get(Header) == "" {
		r = r.Clone(r.Context())
		r.Header.Set(Header, id)
	}
	return t.next.RoundTrip(r)
}

// sane: 1 to MaxLen letters, digits and -._: (UUIDs, trace ids, what
// proxies make), nothing that could forge a log field or a header.
func sane(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// LogHandler adds request_id to every record logged with a context that
// carries one.
func LogHandler(h slog.Handler) slog.Handler { return handler{h} }

type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler { return handler{h.Handler.WithAttrs(as)} }
func (h handler) WithGroup(name string) slog.Handler    { return handler{h.Handler.WithGroup(name)} }
