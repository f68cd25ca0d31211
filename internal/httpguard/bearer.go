package httpguard

import (
	"net/http"
	"strings"
)

// Bearer returns the token of r's Authorization header: the scheme
// "Bearer" in any case, one or more spaces, the token (RFC 6750 §2.1). ok
// is false when there is none. The authority's API and tegata relay take
// API keys by it.
func Bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimLeft(tok, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}
