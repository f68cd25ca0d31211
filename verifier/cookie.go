package verifier

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// TokenFromRequestOrCookie returns the request's token from its
// Authorization header (read as TokenFromRequest reads it) or from the
// cookie named cookie; an empty cookie name reads no cookie. It is the one
// rule for where a token comes from, shared by every tegata component that
// accepts cookies, so that whichever part of the request a handler
// downstream reads, it holds the token that was verified:
//
//   - a malformed Authorization header is an error, never a reason to try
//     the cookie;
//   - several cookies of that name are refused (ErrMalformed), as several
//     Authorization headers are; so are cookies whose names frameworks
//     read as that name (PHP percent-decodes names and turns '.' and ' '
//     into '_');
//   - a request carrying both a header and the cookie must carry the same
//     token in each (else ErrMalformed): an app reading the cookie must not
//     get a token nobody checked;
//   - without either (an empty cookie counts as none) it returns ErrNoToken.
func TokenFromRequestOrCookie(r *http.Request, cookie string) (string, error) {
	raw, err := TokenFromRequest(r)
	if cookie == "" || (err != nil && !errors.Is(err, ErrNoToken)) {
		return raw, err
	}
	c, n := tokenCookie(r.Header.Values("Cookie"), cookie)
	switch {
	case n > 1:
		return "", fmt.Errorf("%w: several %s cookies", ErrMalformed, cookie)
	case c == "":
		return raw, err // the header's token, or ErrNoToken
	case !isB64Token(c):
		return "", fmt.Errorf("%w: %s cookie has characters outside b64token", ErrMalformed, cookie)
	case err == nil && c != raw:
		return "", fmt.Errorf("%w: the Authorization header and the %s cookie carry different tokens", ErrMalformed, cookie)
	}
	return c, nil
}

// tokenCookie scans the Cookie headers for cookies read as name and returns
// the value of the last one (unquoted) and how many there were. It reads
// the headers itself rather than through http.Request.Cookies, which skips
// cookies with values it finds invalid: an app in another language may
// still read those.
func tokenCookie(headers []string, name string) (value string, n int) {
	want := cookieName(name)
	for _, h := range headers {
		for part := range strings.SplitSeq(h, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			if k != name && cookieName(k) != want {
				continue
			}
			n++
			value = strings.TrimSpace(v)
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
		}
	}
	return value, n
}

// cookieName is a cookie name as the most lenient common framework reads it:
// percent-decoded, with '.' and ' ' turned into '_' (PHP).
func cookieName(k string) string {
	if d, err := url.PathUnescape(k); err == nil {
		k = d
	}
	return nameFolder.Replace(strings.TrimSpace(k))
}

var nameFolder = strings.NewReplacer(".", "_", " ", "_")
