package verifier

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

func TestMiddleware(t *testing.T) {
	l := newLocal(t, 0)
	valid := l.claims("alice")
	revoked := l.claims("bob")
	if err := l.set.Apply(revocation.Entry{Seq: 1, Kind: revocation.KindSession, Session: revoked.SessionID,
		ExpiresAt: l.clock.In(time.Hour)}); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	expired := l.claims("carol")
	expired.IssuedAt, expired.Expiry = l.clock.In(-time.Hour), l.clock.In(-time.Minute)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := FromContext(r.Context())
		if !ok {
			t.Errorf("FromContext in next = false, want claims")
			return
		}
		w.Write([]byte(c.Subject()))
	})
	h := l.v.Middleware(next)
	tests := []struct {
		name          string
		authorization []string
		wantStatus    int
		wantBody      string // the subject on success
		wantChallenge string
		wantReason    string
	}{
		{"valid", []string{"Bearer " + sign(t, l.key, valid)}, 200, "alice", "", ""},
		{"scheme in lower case", []string{"bearer " + sign(t, l.key, valid)}, 200, "alice", "", ""},
		{"no header", nil, 401, "", `Bearer realm="tegata"`, "no token"},
		{"basic auth", []string{"Basic YWxpY2U6cHc="}, 401, "",
			`Bearer realm="tegata", error="invalid_token", error_description="token invalid"`, "token invalid"},
		{"garbage", []string{"Bearer abc.def.ghi"}, 401, "",
			`Bearer realm="tegata", error="invalid_token", error_description="token invalid"`, "token invalid"},
		{"expired", []string{"Bearer " + sign(t, l.key, expired)}, 401, "",
			`Bearer realm="tegata", error="invalid_token", error_description="token expired"`, "token expired"},
		{"revoked", []string{"Bearer " + sign(t, l.key, revoked)}, 401, "",
			`Bearer realm="tegata", error="invalid_token", error_description="token revoked"`, "token revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, a := range tt.authorization {
				r.Header.Add("Authorization", a)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantStatus == 200 {
				if w.Body.String() != tt.wantBody {
					t.Errorf("body = %q, want %q", w.Body, tt.wantBody)
				}
				return
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChallenge)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if body.Error != "invalid_token" || body.Description != tt.wantReason {
				t.Errorf("body = %+v, want invalid_token / %q", body, tt.wantReason)
			}
		})
	}
}

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name          string
		authorization []string
		want          string
		wantErr       error
	}{
		{"bearer", []string{"Bearer abc.DEF-_~+/.x=="}, "abc.DEF-_~+/.x==", nil},
		{"scheme any case", []string{"bEaReR tok"}, "tok", nil},
		{"absent", nil, "", ErrNoToken},
		{"empty", []string{""}, "", ErrNoToken},
		{"other scheme", []string{"Basic dXNlcjpwdw=="}, "", ErrMalformed},
		{"scheme only", []string{"Bearer"}, "", ErrMalformed},
		{"scheme and space only", []string{"Bearer "}, "", ErrMalformed},
		{"two spaces (RFC 6750: 1*SP)", []string{"Bearer  tok"}, "tok", nil},
		{"many spaces", []string{"bearer     tok"}, "tok", nil},
		{"spaces only", []string{"Bearer    "}, "", ErrMalformed},
		{"tab", []string{"Bearer\ttok"}, "", ErrMalformed},
		{"trailing space", []string{"Bearer tok "}, "", ErrMalformed},
		{"padding inside", []string{"Bearer to=k"}, "", ErrMalformed},
		{"non-ASCII", []string{"Bearer tök"}, "", ErrMalformed},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for _, a := range tt.authorization {
				r.Header.Add("Authorization", a)
			}
			got, err := TokenFromRequest(r)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("TokenFromRequest(%q) = %q, %v; want %q, %v", tt.authorization, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestTokenFromRequestOrCookie(t *testing.T) {
	tests := []struct {
		name          string
		authorization string
		cookies       []string
		want          string
		wantErr       error
	}{
		{"header only", "Bearer tok", nil, "tok", nil},
		{"cookie only", "", []string{"a=1; at=tok"}, "tok", nil},
		{"quoted cookie", "", []string{`at="tok"`}, "tok", nil},
		{"neither", "", []string{"a=1"}, "", ErrNoToken},
		{"empty cookie", "", []string{"at="}, "", ErrNoToken},
		{"header and same cookie", "Bearer tok", []string{"at=tok"}, "tok", nil},
		{"header and other cookie", "Bearer tok", []string{"at=other"}, "", ErrMalformed},
		{"malformed header, valid cookie", "Basic x", []string{"at=tok"}, "", ErrMalformed},
		{"two cookies", "", []string{"at=tok; at=tok"}, "", ErrMalformed},
		{"two cookie headers", "", []string{"at=tok", "at=other"}, "", ErrMalformed},
		{"a folded name", "", []string{"at=tok; a%74=x"}, "", ErrMalformed},
		{"cookie outside b64token", "", []string{`at=to"k`}, "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			for _, c := range tt.cookies {
				r.Header.Add("Cookie", c)
			}
			got, err := TokenFromRequestOrCookie(r, "at")
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("TokenFromRequestOrCookie(%q, %q) = %q, %v; want %q, %v", tt.authorization, tt.cookies, got, err, tt.want, tt.wantErr)
			}
		})
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "at=tok")
	if _, err := TokenFromRequestOrCookie(r, ""); !errors.Is(err, ErrNoToken) {
		t.Errorf("TokenFromRequestOrCookie(cookie only, no cookie name) = %v, want %v", err, ErrNoToken)
	}
}

func TestFromContextEmpty(t *testing.T) {
	if c, ok := FromContext(httptest.NewRequest("GET", "/", nil).Context()); ok || c != nil {
		t.Errorf("FromContext(empty) = %v, %v; want nil, false", c, ok)
	}
}

// serve runs h on a request with the given headers and returns the answer.
func serve(h http.Handler, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/", nil)
	for k, vs := range header {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// whoami answers with the subject of the request's claims, or "anonymous".
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if c, ok := FromContext(r.Context()); ok {
		w.Write([]byte(c.Subject()))
		return
	}
	w.Write([]byte("anonymous"))
})

func TestMiddlewareOptions(t *testing.T) {
	l := newLocal(t, 0)
	alice := sign(t, l.key, l.claims("alice"))
	bob := sign(t, l.key, l.claims("bob"))
	expiredC := l.claims("carol")
	expiredC.IssuedAt, expiredC.Expiry = l.clock.In(-time.Hour), l.clock.In(-time.Minute)
	expired := sign(t, l.key, expiredC)
	var handled []error
	custom := OnError(func(w http.ResponseWriter, r *http.Request, err error) {
		handled = append(handled, err)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	cookie := func(v ...string) http.Header {
		h := http.Header{}
		for _, s := range v {
			h.Add("Cookie", "__Host-tegata-at="+s)
		}
		return h
	}
	bearer := func(s string) http.Header { return http.Header{"Authorization": {"Bearer " + s}} }
	tests := []struct {
		name       string
		opts       []MiddlewareOption
		header     http.Header
		wantStatus int
		wantBody   string
	}{
		{"header only by default: a cookie is not read", nil, cookie(alice), 401, ""},
		{"cookie", []MiddlewareOption{TokenCookie("__Host-tegata-at")}, cookie(alice), 200, "alice"},
		{"header still read with a cookie name", []MiddlewareOption{TokenCookie("__Host-tegata-at")}, bearer(alice), 200, "alice"},
		{"two token cookies refused", []MiddlewareOption{TokenCookie("__Host-tegata-at")}, cookie(alice, bob), 401, ""},
		{"header and another cookie refused", []MiddlewareOption{TokenCookie("__Host-tegata-at")},
			http.Header{"Authorization": {"Bearer " + alice}, "Cookie": {"__Host-tegata-at=" + bob}}, 401, ""},
		{"anonymous allowed", []MiddlewareOption{AllowAnonymous()}, nil, 200, "anonymous"},
		{"anonymous allowed, token still checked", []MiddlewareOption{AllowAnonymous()}, bearer(expired), 401, ""},
		{"anonymous allowed, valid token", []MiddlewareOption{AllowAnonymous()}, bearer(alice), 200, "alice"},
		{"custom error handler", []MiddlewareOption{custom}, bearer(expired), 303, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(l.v.Middleware(whoami, tt.opts...), tt.header)
			if w.Code != tt.wantStatus || (tt.wantStatus == 200 && w.Body.String() != tt.wantBody) {
				t.Errorf("status, body = %d %q, want %d %q", w.Code, w.Body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	if len(handled) != 1 || !errors.Is(handled[0], ErrExpired) {
		t.Errorf("errors given to the custom handler = %v, want one wrapping ErrExpired", handled)
	}
}

func TestRequire(t *testing.T) {
	l := newLocal(t, 0)
	mint := func(sub string, extra map[string]any) string {
		c := l.claims(sub)
		c.Extra = extra
		return "Bearer " + sign(t, l.key, c)
	}
	admin := mint("ann", map[string]any{"roles": []any{"admin", "editor"}, "scope": "orders:read orders:write"})
	editor := mint("ed", map[string]any{"roles": []any{"editor"}, "scope": "orders:read"})
	plain := mint("pat", nil)
	tests := []struct {
		name          string
		require       func(http.Handler) http.Handler
		authorization string
		wantStatus    int
	}{
		{"role held", RequireClaim("roles", "admin"), admin, 200},
		{"one of several roles", RequireClaim("roles", "owner", "editor"), editor, 200},
		{"role missing", RequireClaim("roles", "admin"), editor, 403},
		{"claim missing", RequireClaim("roles", "admin"), plain, 403},
		{"all scopes held", RequireScope("orders:read", "orders:write"), admin, 200},
		{"a scope missing", RequireScope("orders:read", "orders:write"), editor, 403},
		{"custom check", Require(func(c *Claims) bool { return c.Subject() == "pat" }), plain, 200},
		{"custom check refuses", Require(func(c *Claims) bool { return c.Subject() == "pat" }), admin, 403},
		{"anonymous request behind AllowAnonymous", RequireClaim("roles", "admin"), "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := l.v.Middleware(tt.require(whoami), AllowAnonymous())
			header := http.Header{}
			if tt.authorization != "" {
				header.Set("Authorization", tt.authorization)
			}
			w := serve(h, header)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			switch tt.wantStatus {
			case 403:
				want := `Bearer realm="tegata", error="insufficient_scope", error_description="insufficient claims"`
				if got := w.Header().Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
				if want := `{"error":"insufficient_scope","error_description":"insufficient claims"}` + "\n"; w.Body.String() != want {
					t.Errorf("body = %q, want %q", w.Body, want)
				}
			case 401:
				if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="tegata"` {
					t.Errorf("WWW-Authenticate = %q, want the bare challenge", got)
				}
			}
		})
	}
	// The Middleware's error handler answers for Require too.
	var got error
	h := l.v.Middleware(RequireClaim("roles", "admin")(whoami), OnError(func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		w.WriteHeader(http.StatusTeapot)
	}))
	if w := serve(h, http.Header{"Authorization": {editor}}); w.Code != http.StatusTeapot || !errors.Is(got, ErrForbidden) {
		t.Errorf("RequireClaim behind OnError = %d, %v, want the custom handler with ErrForbidden", w.Code, got)
	}
	// Without any Middleware there are no claims: refused, not a panic.
	if w := serve(RequireScope("x")(whoami), nil); w.Code != 401 {
		t.Errorf("RequireScope without Middleware = %d, want 401", w.Code)
	}
}
