package server_test

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/dbsc"
	"github.com/tegata-dev/tegata/internal/keyproof"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
)

// dbscDevice is a browser's DBSC key, signing the challenges a web gate
// would issue at the authority's clock.
type dbscDevice struct {
	t   *testing.T
	key *ecdsa.PrivateKey
	e   *env
}

// proof signs a fresh challenge for the refresh token rt, one millisecond
// after the last one (a gate's clock moves on between challenges).
func (d dbscDevice) proof(rt string) string {
	d.t.Helper()
	d.e.clock.Add(time.Millisecond)
	claims, _ := json.Marshal(map[string]string{"jti": dbsc.Challenge(rt, d.e.clock.Now())})
	p, err := keyproof.Sign(d.key, dbsc.ProofType, claims)
	if err != nil {
		d.t.Fatal(err)
	}
	return p
}

// boundSession signs alice in through a gate key and binds the session to
// a new DBSC key, as a gate does at registration.
func boundSession(t *testing.T, e *env) (*client.Client, dbscDevice, client.Tokens) {
	t.Helper()
	gate := &client.Client{BaseURL: e.URL, APIKey: createKey(t, e.admin, "web", authority.RoleGate).Key}
	tok, err := gate.CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "browser"})
	if err != nil {
		t.Fatal(err)
	}
	d := dbscDevice{t: t, key: newP256(t), e: e}
	jwk, err := keyproof.PublicKey(&d.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gate.BindSession(ctx(t), client.BindRequest{SessionID: tok.SessionID, Kind: client.BindingDBSC,
		JWK: jwk.JSON, RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatalf("BindSession = %v", err)
	}
	return gate, d, tok
}

// TestDBSCProofReplayInGrace: a DBSC proof captured in flight, presented
// with the refresh token it came with inside the grace window, gets
// nothing and revokes nothing; the browser, which signs a fresh challenge
// when an answer is lost, still gets the successor. On SQLite and
// Postgres.
func TestDBSCProofReplayInGrace(t *testing.T) {
	t.Parallel()
	onStores(t, func(t *testing.T, tune func(*server.Config)) {
		e := start(t, tune)
		gate, d, tok := boundSession(t, e)
		captured := d.proof(tok.RefreshToken)
		next, err := gate.RefreshDBSC(ctx(t), tok.RefreshToken, captured)
		if err != nil {
			t.Fatalf("RefreshDBSC(the browser's proof) = %v", err)
		}
		e.clock.Add(time.Second) // inside the grace window (10 s)
		if got, err := gate.RefreshDBSC(ctx(t), tok.RefreshToken, captured); !errors.Is(err, client.ErrUseDBSCChallenge) {
			t.Fatalf("RefreshDBSC(the captured proof, the spent token, in grace) = %+v, %v; want ErrUseDBSCChallenge", got.RefreshToken != "", err)
		}
		// The browser lost the answer: it still holds the spent token,
		// is challenged afresh and gets the same successor.
		lost, err := gate.RefreshDBSC(ctx(t), tok.RefreshToken, d.proof(tok.RefreshToken))
		if err != nil || lost.RefreshToken != next.RefreshToken {
			t.Fatalf("RefreshDBSC(a fresh proof, the spent token, in grace) = %v; want the successor", err)
		}
		// The proof of that retry is spent too, and the session lives on.
		retry := d.proof(tok.RefreshToken)
		if _, err := gate.RefreshDBSC(ctx(t), tok.RefreshToken, retry); err != nil {
			t.Fatalf("RefreshDBSC(another fresh proof) = %v", err)
		}
		if _, err := gate.RefreshDBSC(ctx(t), tok.RefreshToken, retry); !errors.Is(err, client.ErrUseDBSCChallenge) {
			t.Errorf("RefreshDBSC(a retry's proof again) = %v, want ErrUseDBSCChallenge", err)
		}
		if _, err := gate.RefreshDBSC(ctx(t), next.RefreshToken, d.proof(next.RefreshToken)); err != nil {
			t.Errorf("RefreshDBSC(the successor) = %v, want the session alive", err)
		}
		wantNoRevocation(t, e, tok.SessionID)
	})
}

// TestDBSCConcurrentTabs: a bound browser's tabs all need a new access
// token at once. Their requests that carry the refresh cookie alone are
// refused without spending or revoking anything, and the DBSC refreshes
// that race with them (over challenges issued one after the other, as
// several gates might) never look like theft: each gets the one
// successor or is asked to sign afresh. On SQLite and Postgres.
func TestDBSCConcurrentTabs(t *testing.T) {
	t.Parallel()
	onStores(t, func(t *testing.T, tune func(*server.Config)) {
		e := start(t, tune)
		gate, d, tok := boundSession(t, e)
		rt := tok.RefreshToken
		for round := range 3 {
			proofs := []string{d.proof(rt), d.proof(rt), d.proof(rt)}
			results := make([]client.Tokens, 12)
			errs := make([]error, len(results))
			var wg sync.WaitGroup
			for i := range results {
				wg.Go(func() {
					if i < len(proofs) {
						results[i], errs[i] = gate.RefreshDBSC(ctx(t), rt, proofs[i])
						return
					}
					results[i], errs[i] = gate.Refresh(ctx(t), rt)
				})
			}
			wg.Wait()
			successor := ""
			for i, err := range errs {
				switch {
				case err == nil && i < len(proofs) && (successor == "" || successor == results[i].RefreshToken):
					successor = results[i].RefreshToken
				case errors.Is(err, client.ErrUseDBSCChallenge):
				default:
					t.Fatalf("round %d: refresh #%d = %v (tokens %v); want the one successor or ErrUseDBSCChallenge", round, i, err, results[i].RefreshToken != "")
				}
			}
			if successor == "" {
				t.Fatalf("round %d: no refresh succeeded", round)
			}
			rt = successor
		}
		wantNoRevocation(t, e, tok.SessionID)
	})
}

// onStores runs a test against an authority on SQLite, then on Postgres.
func onStores(t *testing.T, run func(t *testing.T, tune func(*server.Config))) {
	t.Run("sqlite", func(t *testing.T) { run(t, nil) })
	t.Run("postgres", func(t *testing.T) {
		dsn := migrated.Schema(t)
		run(t, func(c *server.Config) { c.DB = dsn })
	})
}

// wantNoRevocation: the session is live and nothing was taken for theft.
func wantNoRevocation(t *testing.T, e *env, sid string) {
	t.Helper()
	if s, err := e.admin.Session(ctx(t), sid); err != nil || s.ID != sid {
		t.Errorf("Session(%s) = %v; want it live", sid, err)
	}
	c := e.Authority.Counters()
	if c[authority.RevokedTheft] != 0 || c[authority.RevokedBindingFailed] != 0 {
		t.Errorf("Counters() = %v; want no theft and no failed binding", c)
	}
}
