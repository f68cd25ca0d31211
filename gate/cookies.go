package gate

import (
	"errors"
	"fmt"
	"net/http"
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

// cookieJar builds the session cookies.
type cookieJar struct {
	access, refresh string
	secure          bool
	sameSite        http.SameSite
}

func newCookieJar(insecure bool, sameSite http.SameSite) (cookieJar, error) {
	j := cookieJar{access: CookieAccess, refresh: CookieRefresh, secure: true, sameSite: sameSite}
	if insecure {
		j.access, j.refresh, j.secure = InsecureCookieAccess, InsecureCookieRefresh, false
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

// session returns the two cookies holding tok, each expiring with its
// token. The lifetimes come from the authority's answer (expires_in, and
// the gap between the two expiry instants it gives), not from this
// machine's clock, so clock skew cannot shorten or stretch them.
func (j cookieJar) session(tok client.Tokens) ([]*http.Cookie, error) {
	atAge := time.Duration(tok.ExpiresIn) * time.Second
	rtAge := atAge + tok.RefreshExpiresAt.Sub(tok.AccessExpiresAt)
	at, rt := j.cookie(j.access, tok.AccessToken, atAge), j.cookie(j.refresh, tok.RefreshToken, rtAge)
	if len(at.Name)+len(at.Value) > maxCookieBytes || len(rt.Name)+len(rt.Value) > maxCookieBytes {
		return nil, errCookieTooLarge
	}
	return []*http.Cookie{at, rt}, nil
}

// clear returns the cookies that delete both.
func (j cookieJar) clear() []*http.Cookie {
	return []*http.Cookie{j.cookie(j.access, "", -1), j.cookie(j.refresh, "", -1)}
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
			if part = strings.TrimSpace(part); part != "" && name != j.access && name != j.refresh {
				kept = append(kept, part)
			}
		}
	}
	h.Del("Cookie")
	if len(kept) > 0 {
		h.Set("Cookie", strings.Join(kept, "; "))
	}
}
