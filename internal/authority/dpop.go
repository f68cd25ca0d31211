package authority

import (
	"errors"
	"strings"
	"time"

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
	p, err := a.proofs.Check(proof, dpop.Request{Method: "POST", URL: url}, a.cfg.Clock.Now())
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
	// DBSCProof is a browser's DBSC proof relayed by a web gate
	// (RefreshDBSC).
	DBSCProof string
}

// checkBinding applies a session's binding to a refresh (checkDPoP,
// checkDBSC) and returns the issue time of the DBSC challenge to accept
// once, if any.
func checkBinding(s store.Session, req RefreshRequest, now time.Time) (time.Time, error) {
	if err := checkDPoP(s, req.DPoPJKT); err != nil {
		return time.Time{}, err
	}
	return checkDBSC(s, req.RefreshToken, req.DBSCProof, now)
}

// checkDPoP is the refresh rule of a DPoP-bound session: a proof of its
// key must come. None is refused and spends nothing (a client that lost
// its header is not a thief); a proof of another key is an
// *errBindingFailed: whoever refreshes holds the refresh token but not the
// device's key. A proof sent for a session bound to no DPoP key is
// refused: refresh never binds.
func checkDPoP(s store.Session, jkt string) error {
	b := s.Binding
	switch {
	case b.Kind == store.BindingDPoP && jkt == "":
		return proofError("the session is DPoP-bound and no proof came")
	case b.Kind == store.BindingDPoP && jkt != b.Thumbprint:
		return &errBindingFailed{session: s, err: errors.New("refresh with a DPoP proof signed by another key")}
	case b.Kind != store.BindingDPoP && jkt != "":
		return proofError("the session is not bound to a DPoP key; bind it at sign-in")
	}
	return nil
}
