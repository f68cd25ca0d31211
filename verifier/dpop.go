package verifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tegata-dev/tegata/internal/dpop"
)

var (
	errBoundAsBearer = fmt.Errorf("%w: the token is DPoP-bound: present it with the DPoP scheme and a proof", ErrDPoP)
	errNotBound      = fmt.Errorf("%w: the token is not DPoP-bound: present it as a Bearer token", ErrDPoP)
	errOtherKey      = fmt.Errorf("%w: the proof is signed by another key than the token is bound to", ErrDPoP)
)

// nonceError is ErrUseDPoPNonce with the nonce to send.
type nonceError struct{ nonce string }

func (e *nonceError) Error() string { return ErrUseDPoPNonce.Error() }
func (e *nonceError) Unwrap() error { return ErrUseDPoPNonce }

// VerifyDPoP verifies a DPoP-bound access token presented with proof, the
// request's DPoP header (RFC 9449 §7.1): the token as Verify does, then
// the proof against the request (method; url, the absolute URL the client
// addressed, whose query is ignored): its signature, htm, htu, iat within
// Config.DPoPWindow, ath (the token's hash), its jti never seen before by
// this verifier, the nonce with Config.DPoPNonce, and its key being the
// one the token is bound to (cnf.jkt). Errors wrap ErrDPoP or
// ErrUseDPoPNonce, or are Verify's. A token that is not DPoP-bound is
// refused: it must come as a Bearer token.
func (v *Verifier) VerifyDPoP(ctx context.Context, raw, proof, method, url string) (*Claims, error) {
	c, err := v.verifyDPoP(ctx, raw, proof, method, url)
	if err != nil {
		v.logRejection(ctx, c, err)
		return nil, err
	}
	return c, nil
}

func (v *Verifier) verifyDPoP(ctx context.Context, raw, proof, method, url string) (*Claims, error) {
	now := v.now()
	e, err := v.verifyEntry(ctx, raw, now)
	if e == nil {
		return nil, err
	}
	c := e.claims
	if err != nil {
		return c, err
	}
	if c.t.JKT == "" {
		return c, errNotBound
	}
	p, err := v.proofs.Check(proof, dpop.Request{Method: method, URL: url, AccessToken: raw, AccessTokenHash: &e.ath}, now)
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		return c, &nonceError{nonce: v.nonces.Current(now)}
	case err != nil:
		return c, fmt.Errorf("%w: %w", ErrDPoP, err)
	case p.JKT != c.t.JKT:
		return c, errOtherKey
	}
	return c, nil
}

// errNoPublicURL refuses a DPoP request at a Middleware without
// Config.PublicURL.
var errNoPublicURL = fmt.Errorf("%w: Config.PublicURL is not set, so the middleware cannot tell the URL a DPoP proof must name (htu): "+
	"the request's Host is the client's to choose, and a proof captured for another service would be good here", ErrDPoP)

// verifyDPoPRequest verifies a request with the DPoP scheme against the
// URL PublicURL and its path name. Without PublicURL it is refused: the
// request's own scheme and Host are whatever the client sent, and trusting
// them would let a proof made for another service that accepts the same
// tokens be replayed here once, with that service's name in Host.
func (v *Verifier) verifyDPoPRequest(r *http.Request, raw, proof string) (*Claims, error) {
	if v.cfg.PublicURL == "" {
		if ok, held := v.configWarn.allow("dpop_public_url", v.now()); ok {
			v.log.WarnContext(r.Context(), "verifier: DPoP request refused: "+errNoPublicURL.Error(), "more_since_last_line", held)
		}
		return nil, errNoPublicURL
	}
	return v.VerifyDPoP(r.Context(), raw, proof, r.Method, strings.TrimSuffix(v.cfg.PublicURL, "/")+r.URL.EscapedPath())
}

// DPoPTokenFromRequest returns the token of an "Authorization: DPoP
// <token>" header (scheme case-insensitive) and the request's DPoP proof
// header, for VerifyDPoP. isDPoP is false, with no error, when the request
// does not use the DPoP scheme; the error wraps ErrMalformed for a token
// outside b64token and ErrDPoP unless there is exactly one DPoP header.
func DPoPTokenFromRequest(r *http.Request) (raw, proof string, isDPoP bool, err error) {
	vals := r.Header.Values("Authorization")
	const scheme = "dpop "
	if len(vals) != 1 || len(vals[0]) <= len(scheme) || !asciiEqualFold(vals[0][:len(scheme)], scheme) {
		return "", "", false, nil
	}
	raw = strings.TrimLeft(vals[0][len(scheme):], " ")
	if !isB64Token(raw) {
		return "", "", true, fmt.Errorf("%w: DPoP token has characters outside b64token", ErrMalformed)
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 || proofs[0] == "" {
		return raw, "", true, fmt.Errorf("%w: want exactly one DPoP header, got %d", ErrDPoP, len(proofs))
	}
	return raw, proofs[0], true, nil
}

// dpopChallenge is the WWW-Authenticate value of a refused DPoP request
// (RFC 9449 §7.1), and the DPoP-Nonce to send with it.
func dpopChallenge(err error) (challenge, code, nonce string, ok bool) {
	var ne *nonceError
	switch {
	case errors.As(err, &ne):
		return `DPoP algs="ES256 EdDSA Ed25519", error="use_dpop_nonce", error_description="` + reasonNonce + `"`, "use_dpop_nonce", ne.nonce, true
	case errors.Is(err, ErrDPoP):
		return `DPoP algs="ES256 EdDSA Ed25519", error="invalid_dpop_proof", error_description="` + reasonDPoP + `"`, "invalid_dpop_proof", "", true
	}
	return "", "", "", false
}
