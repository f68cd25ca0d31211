package authority

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/internal/store"
)

// CodeInvalidDPoPProof is RFC 9449's answer to a missing or bad DPoP proof
// at sign-in or refresh.
const CodeInvalidDPoPProof = "invalid_dpop_proof"

// Paths whose URLs DPoP proofs sent to the authority name (htu): the
// Issuer with these appended, as the discovery document publishes them.
const (
	SessionsPath = "/v1/sessions"
	RefreshPath  = "/v1/token/refresh"
)

// CheckProof checks a DPoP proof sent with a POST to path (SessionsPath or
// RefreshPath) and returns the thumbprint of its key. A bad proof is an
// *Error with CodeInvalidDPoPProof.
func (a *Authority) CheckProof(proof, path string) (string, error) {
	url := strings.TrimSuffix(a.cfg.Issuer, "/") + path
	p, err := a.proofs.Check(proof, dpop.Request{Method: "POST", URL: url}, a.cfg.Now())
	if err != nil {
		return "", proofError(err.Error())
	}
	return p.JKT, nil
}

func proofError(detail string) error {
	return &Error{Code: CodeInvalidDPoPProof, Description: "DPoP proof is missing or invalid", Detail: detail}
}

// dpopBinding is the binding of a session created for a DPoP key.
func dpopBinding(jkt string) (store.Binding, error) {
	if jkt == "" {
		return store.Binding{}, nil
	}
	if len(jkt) != 43 || strings.Trim(jkt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return store.Binding{}, invalidRequest("dpop_jkt must be a SHA-256 JWK thumbprint in base64url (43 characters)")
	}
	return store.Binding{Kind: store.BindingDPoP, Thumbprint: jkt}, nil
}

// RefreshRequest is the input of RefreshWith.
type RefreshRequest struct {
	RefreshToken string
	// DPoPJKT is the key of a DPoP proof checked with CheckProof
	// (RefreshPath); "" when none came.
	DPoPJKT string
	// ProvenJKT is the key a trusted caller (a web gate's API key) checked
	// a proof of possession of: a DBSC refresh proof.
	ProvenJKT string
}

// theftError is a proof of another key than the session's: whoever
// refreshes holds the session's refresh token but not its device key.
type theftError struct {
	session store.Session
	why     string
}

func (e *theftError) Error() string { return e.why }

// bindingRefusal applies a session's binding to a refresh: nil when the
// refresh may go on; a *theftError when a proof of another key came; an
// *Error otherwise (nothing proven: a client mistake or a missing proof
// is refused, not taken for theft).
func bindingRefusal(s store.Session, r RefreshRequest) error {
	b := s.Binding
	switch {
	case b.Kind == store.BindingDPoP && r.DPoPJKT == "":
		return proofError("the session is DPoP-bound and no proof came")
	case b.Kind == store.BindingDPoP && r.DPoPJKT != b.Thumbprint:
		return &theftError{session: s, why: "refresh with a DPoP proof signed by another key"}
	case b.Kind == store.BindingDBSC && r.ProvenJKT == "":
		return &Error{Code: CodeInvalidGrant, Description: "refresh token is invalid, expired or revoked",
			Detail: "the session is DBSC-bound: it refreshes only through the web gate, with a proof"}
	case b.Kind == store.BindingDBSC && r.ProvenJKT != b.Thumbprint:
		return &theftError{session: s, why: "refresh with a DBSC proof signed by another key"}
	case b.Kind == "" && r.DPoPJKT != "":
		return proofError("the session is not DPoP-bound; bind it at sign-in")
	case b.Kind == "" && r.ProvenJKT != "", b.Kind == store.BindingDPoP && r.ProvenJKT != "":
		return invalidRequest("binding_jkt names the key of a DBSC-bound session, and this session is not one")
	}
	return nil
}

// refusedForBinding turns a binding refusal into the answer, revoking the
// session first when it was theft.
func (a *Authority) refusedForBinding(ctx context.Context, err error) error {
	var theft *theftError
	if !errors.As(err, &theft) {
		return err
	}
	actor := store.Actor{By: "system", Reason: theft.why}
	if _, rerr := a.revokeForBinding(ctx, theft.session, actor); rerr != nil {
		return fmt.Errorf("authority: revoke session %s after a proof of another key: %w", theft.session.ID, rerr)
	}
	if theft.session.Binding.Kind == store.BindingDPoP {
		return &Error{Code: CodeInvalidDPoPProof, kind: ErrReuse,
			Description: "DPoP proof is signed by another key than the session's; the session has been revoked"}
	}
	return &Error{Code: CodeInvalidGrant, kind: ErrReuse,
		Description: "proof is signed by another key than the session's; the session has been revoked"}
}
