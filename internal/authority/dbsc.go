package authority

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/dbsc"
	"github.com/tegata-dev/tegata/internal/keyproof"
	"github.com/tegata-dev/tegata/internal/store"
)

// CodeUseDBSCChallenge refuses a refresh of a session bound to a browser's
// DBSC key that brought no proof, or one over no current challenge: the
// gate asks the browser to sign a fresh challenge (Secure-Session-Challenge)
// and tries again. Nothing is spent or revoked: a browser whose refresh was
// skipped, or a thief with copied cookies, both land here, and only a
// proof signed by another key tells them apart.
const CodeUseDBSCChallenge = "use_dbsc_challenge"

// RefreshDBSC is Refresh for a web gate that relays a browser's DBSC
// proof (the Secure-Session-Response JWT) over a challenge it issued for
// this refresh token (dbsc.Challenge). A session bound to a DBSC key is
// refreshed only so; Refresh without a proof refuses it with
// CodeUseDBSCChallenge, and a proof not signed by the bound key revokes it
// as stolen (session.binding_failed). For a session not bound to a DBSC
// key the proof is ignored.
func (a *Authority) RefreshDBSC(ctx context.Context, refresh, proof string) (Tokens, error) {
	return a.RefreshWith(ctx, RefreshRequest{RefreshToken: refresh, DBSCProof: proof})
}

// errBindingFailed: a DBSC proof for a bound session is signed by another
// key (or is no proof). The session it names is revoked before the
// refusal goes out.
type errBindingFailed struct {
	session store.Session
	err     error
}

func (e *errBindingFailed) Error() string { return "authority: DBSC proof failed: " + e.err.Error() }
func (e *errBindingFailed) Unwrap() error { return e.err }

// checkDBSC is the refresh rule of a session bound to a browser key: the
// refresh token alone is not enough, a proof over a current challenge
// signed by the bound key must come with it. It returns the challenge's
// issue time, which the store accepts once with this refresh token
// (store.Rotation.Check). Sessions bound otherwise, or not at all, pass.
func checkDBSC(s store.Session, refresh, proof string, now time.Time) (time.Time, error) {
	if s.Binding.Kind != store.BindingDBSC {
		return time.Time{}, nil
	}
	if proof == "" {
		return time.Time{}, &Error{Code: CodeUseDBSCChallenge, Description: "the session is bound to a browser's key: refresh it with a DBSC proof",
			Detail: "no proof"}
	}
	key, err := keyproof.ParseJWK(s.Binding.Key)
	if err != nil {
		return time.Time{}, fmt.Errorf("authority: session %s: stored DBSC key: %w", s.ID, err)
	}
	at, err := dbsc.CheckRefresh(proof, key, refresh, now)
	switch {
	case err == nil:
		return at, nil
	case errors.Is(err, dbsc.ErrChallenge):
		return time.Time{}, &Error{Code: CodeUseDBSCChallenge, Description: "the DBSC proof signs no current challenge: sign a fresh one",
			Detail: err.Error()}
	}
	return time.Time{}, &errBindingFailed{session: s, err: err}
}

// challengeUsed is the refusal of a DBSC proof over a challenge already
// accepted with the refresh token it came with: a proof captured in
// flight, or one the browser sent twice. Nothing is spent or revoked (the
// key did sign it); the browser is asked to sign a fresh challenge.
func challengeUsed() error {
	return &Error{Code: CodeUseDBSCChallenge, Description: "the DBSC proof signs a challenge used already: sign a fresh one",
		Detail: store.ErrChallengeUsed.Error()}
}

// refusedForBinding revokes the session of a failed proof and returns the
// refusal its client gets, the one a reused refresh token gets.
func (a *Authority) refusedForBinding(ctx context.Context, bf *errBindingFailed) error {
	kind := bf.session.Binding.Kind
	actor := store.Actor{By: "system", Reason: kind + " proof not signed by the session's key: " + bf.err.Error()}
	if _, err := a.revokeForBinding(ctx, bf.session, actor); err != nil {
		return fmt.Errorf("authority: revoke session %s after a failed %s proof: %w", bf.session.ID, kind, err)
	}
	code := CodeInvalidGrant
	if kind == store.BindingDPoP {
		code = CodeInvalidDPoPProof
	}
	return &Error{Code: code, kind: ErrReuse, Description: "the device-binding proof failed; the session has been revoked",
		Detail: bf.err.Error()}
}
