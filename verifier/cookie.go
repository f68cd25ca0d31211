package verifier

import (
	"fmt"
	"net/http"
)

// TokenFromCookie returns the value of the request's cookie name, the one
// place tegata reads a token from a cookie (the gate's access and refresh
// cookies, and the middleware when told to read a cookie). It returns
// ErrNoToken when the request has no such cookie or an empty one, and an
// error wrapping ErrMalformed when the value is not an RFC 6750 b64token,
// which no tegata token or refresh token can fail to be.
func TokenFromCookie(r *http.Request, name string) (string, error) {
	cookies := r.CookiesNamed(name)
	if len(cookies) == 0 || cookies[0].Value == "" {
		return "", ErrNoToken
	}
	raw := cookies[0].Value
	if !isB64Token(raw) {
		return "", fmt.Errorf("%w: cookie %s has characters outside b64token", ErrMalformed, name)
	}
	return raw, nil
}
