package gate

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// Names of the web session cookies. The __Host- prefix makes browsers
// refuse them unless they are Secure, have Path=/ and no Domain: no
// subdomain and no plain-http page can plant or overwrite them.
const (
	CookieAccess          = "__Host-tegata-at"
	CookieRefresh         = "__Host-tegata-rt"
	InsecureCookieAccess  = "tegata-at"
	InsecureCookieRefresh = "tegata-rt"
)

// maxCookieBytes is what every browser keeps of one cookie's name and value
// (RFC 6265 §6.1 asks for at least 4096; Chromium and Firefox stop there).
const maxCookieBytes = 4096

// errCookieTooLarge: an access token with claims this large would be
// dropped by the browser without a word; the sign-in fails loudly instead.
var errCookieTooLarge = errors.New("gate: token too large for a cookie (keep claims under about 3 KB)")

// Names of the browser binding cookie (see cookieJar.session).
const (
	cookieBind         = "__Host-tegata-bind"
	insecureCookieBind = "tegata-bind"
)

// cookieJar builds the session cookies.
type cookieJar struct {
	access, refresh, bind string
	secure                bool
	sameSite              http.SameSite
}

func newCookieJar(insecure bool, sameSite http.SameSite) (cookieJar, error) {
	j := cookieJar{access: CookieAccess, refresh: CookieRefresh, bind: cookieBind, secure: true, sameSite: sameSite}
	if insecure {
		j.access, j.refresh, j.bind, j.secure = InsecureCookieAccess, InsecureCookieRefresh, insecureCookieBind, false
	}
	switch sameSite {
	case 0, http.SameSiteDefaultMode:
		j.sameSite = http.SameSiteLaxMode
	case http.SameSiteLaxMode, http.SameSiteStrictMode:
	default:
		return j, fmt.Errorf("gate: SameSite must be Lax or Strict: the session must not ride along on cross-site requests")
	}
	return j, nil
}

// session returns the cookies holding tok, each expiring with its token,
// and the browser's binding value bind, which lives as long as the refresh
// token. The lifetimes come from the authority's answer (expires_in, and
// the gap between the two expiry instants it gives), not from this
// machine's clock, so clock skew cannot shorten or stretch them.
//
// The binding value is a random secret of this browser, set at sign-in and
// kept across refreshes. It is what the gate's memory of spent refresh
// tokens answers to (refresher): a browser coming back with a spent token
// gets its successor only if it also holds its binding value, which a
// thief holding only a copied refresh token lacks.
func (j cookieJar) session(tok client.Tokens, bind string) ([]*http.Cookie, error) {
	atAge := time.Duration(tok.ExpiresIn) * time.Second
	rtAge := atAge + tok.RefreshExpiresAt.Sub(tok.AccessExpiresAt)
	at, rt := j.cookie(j.access, tok.AccessToken, atAge), j.cookie(j.refresh, tok.RefreshToken, rtAge)
	if len(at.Name)+len(at.Value) > maxCookieBytes || len(rt.Name)+len(rt.Value) > maxCookieBytes {
		return nil, errCookieTooLarge
	}
	return []*http.Cookie{at, rt, j.cookie(j.bind, bind, rtAge)}, nil
}

// clear returns the cookies that delete all three.
func (j cookieJar) clear() []*http.Cookie {
	return []*http.Cookie{j.cookie(j.access, "", -1), j.cookie(j.refresh, "", -1), j.cookie(j.bind, "", -1)}
}

// bindLen is the length of a binding value: 32 random bytes, base64url.
const bindLen = 43

// newBind returns a fresh binding value.
func newBind() string { return base64.RawURLEncoding.EncodeToString(secureRandom(32)) }

// bindOf returns the request's binding value, or "" when it has none (or
// one not shaped like it, or two).
func (j cookieJar) bindOf(r *http.Request) string {
	var found string
	for _, c := range r.CookiesNamed(j.bind) {
		if found != "" || len(c.Value) != bindLen {
			return ""
		}
		found = c.Value
	}
	return found
}

// cookie builds one: HttpOnly (page scripts never see a token), Path=/, no
// Domain. age < 0 deletes it (Max-Age=0); otherwise it is at least 1 s,
// since Max-Age=0 would delete a cookie that has just been issued.
func (j cookieJar) cookie(name, value string, age time.Duration) *http.Cookie {
	maxAge := -1
	if age >= 0 {
		maxAge = max(int(age/time.Second), 1)
	}
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: j.secure, HttpOnly: true, SameSite: j.sameSite}
}

// strip removes the session cookies from the Cookie headers of a request
// before it reaches the app, keeping every other cookie as the browser sent
// it: the tokens are the gate's business, and an app that logs its request
// headers must not log a refresh token.
func (j cookieJar) strip(h http.Header) {
	lines := h.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var kept []string
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if part = strings.TrimSpace(part); part != "" && name != j.access && name != j.refresh && name != j.bind {
				kept = append(kept, part)
			}
		}
	}
	h.Del("Cookie")
	if len(kept) > 0 {
		h.Set("Cookie", strings.Join(kept, "; "))
	}
}

// secureRandom returns n random bytes (crypto/rand.Read does not fail
// since Go 1.24).
func secureRandom(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// errSecureOnPlainHTTP: the browser is on a plain-http page of a host other
// than localhost, where it drops Secure cookies: a sign-in would set
// cookies it never stores and send the user back to the login page with a
// session nobody can use.
var errSecureOnPlainHTTP = errors.New("gate: the browser is on plain http at a host other than localhost, " +
	"where browsers drop the session's Secure cookies, so it cannot sign in: serve the app over https " +
	"(a TLS proxy in front of the gate), or for development only run the gate with --insecure-cookies " +
	"(WebConfig.InsecureCookies)")

// checkCookieScheme refuses a sign-in from a page whose origin, as the
// browser states it, is plain http on a host other than localhost, while
// the cookies are Secure. Behind a TLS terminator the gate itself is
// reached over http, but the browser's Origin says https.
func (w *Web) checkCookieScheme(r *http.Request) error {
	if !w.jar.secure {
		return nil
	}
	u, err := url.Parse(r.Header.Get("Origin"))
	if err != nil || u.Scheme != "http" || isLoopback(u.Hostname()) {
		return nil
	}
	return errSecureOnPlainHTTP
}

// isLoopback reports whether browsers treat host as a secure context over
// plain http (and keep Secure cookies there).
func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
