package authority

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/internal/store"
)

// CodeInvalidDPoPProof is RFC 9449's answer to a missing or bad DPoP proof
// at sign-in or refresh.
const CodeInvalidDPoPProof = "invalid_dpop_proof"

// CodeUseDPoPNonce is RFC 9449's answer (§8) to a DPoP proof without a
// current server nonce when Config.DPoPNonce is on: the client signs a new
// proof with the nonce of DPoPNonce.
const CodeUseDPoPNonce = "use_dpop_nonce"

// dpopNonces returns the nonces of a cluster whose master key is master
// (and, during a rotation, others): nil when period is not positive. Their
// key is derived from the master key, which every node holds, so a nonce
// one node issued is good at every other, with nothing stored or shared
// beyond what the nodes already share.
func dpopNonces(period time.Duration, master []byte, others [][]byte) (*dpop.Nonces, error) {
	if period <= 0 {
		return nil, nil
	}
	keys := make([][32]byte, 0, 1+len(others))
	for _, m := range append([][]byte{master}, others...) {
		if len(m) != MasterKeySize {
			return nil, fmt.Errorf("authority: master key must be %d bytes, got %d", MasterKeySize, len(m))
		}
		k, err := hkdf.Key(sha256.New, m, nil, "tegata dpop nonces", 32)
		if err != nil {
			return nil, fmt.Errorf("authority: derive the DPoP nonce key: %w", err)
		}
		keys = append(keys, [32]byte(k))
	}
	return dpop.NewSharedNonces(period, keys[0], keys[1:]...), nil
}

// DPoPNonce is the nonce to send in DPoP-Nonce now: "" when
// Config.DPoPNonce is off.
func (a *Authority) DPoPNonce() string {
	if a.nonces == nil {
		return ""
	}
	return a.nonces.Current(a.cfg.Clock.Now())
}

// Paths whose URLs DPoP proofs sent to the authority name (htu): the
// Issuer with these appended, as the discovery document publishes them.
const (
	SessionsPath = "/v1/sessions"
	RefreshPath  = "/v1/token/refresh"
)

// CheckProof checks a DPoP proof sent with a POST to path (SessionsPath or
// RefreshPath) and returns the thumbprint of its key. A bad proof is an
// *Error with CodeInvalidDPoPProof; one without a current nonce, when
// Config.DPoPNonce asks for nonces, CodeUseDPoPNonce (send DPoPNonce).
func (a *Authority) CheckProof(proof, path string) (string, error) {
	url := strings.TrimSuffix(a.cfg.Issuer, "/") + path
	p, err := a.proofs.Check(proof, dpop.Request{Method: "POST", URL: url}, a.cfg.Clock.Now())
	if errors.Is(err, dpop.ErrUseNonce) {
		return "", &Error{Code: CodeUseDPoPNonce, Description: "sign the DPoP proof with the nonce in DPoP-Nonce", Detail: err.Error()}
	}
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
	// Console says the operator console refreshes its own session: only
	// such a refresh rotates a session whose subject begins with
	// ConsoleSubjectPrefix (checkConsole). The HTTP API never sets it.
	Console bool
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
