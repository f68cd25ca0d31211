// Package verifiertest is an in-process tegata authority for an app's unit
// tests. It signs in users, refreshes and revokes their sessions, and hands
// out a *verifier.Verifier that trusts it: the verifier an app runs in
// production (signature, claims, revocation set, Middleware), fed directly
// instead of over the network. There is no network, no database and no
// goroutine; the clock is the test's to move.
//
//	auth := verifiertest.New(verifiertest.Config{})
//	h := auth.Verifier().Middleware(myAPI)
//	s := auth.CreateSession("alice", map[string]any{"roles": []string{"editor"}})
//	// ... request h with "Authorization: Bearer "+s.AccessToken: 200
//	auth.RevokeSession(s.SessionID)
//	// ... the same request: 401, token revoked
//
// What it keeps of the real authority: tokens are RFC 9068 JWTs signed
// like the authority's, refresh tokens rotate and a spent one presented
// again revokes its session (theft; there is no grace window), a subject
// cutoff rejects exactly the tokens issued before it, a session bound to a
// DPoP key (CreateDPoPSession) gives tokens accepted only with a proof of
// that key (DPoPProof). What it leaves out:
// API keys, the audit trail, key rotation, rate limits, persistence.
//
// An Authority is safe for concurrent use.
package verifiertest

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/internal/localverifier"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/token"
	"github.com/tegata-dev/tegata/verifier"
)

// Config configures an Authority; the zero value is usable.
type Config struct {
	// Issuer is the iss of the tokens. Default "https://tegata.test".
	Issuer string
	// Audience is their aud. Default "tegata", as the authority's.
	Audience string
	// AccessTTL is the lifetime of access tokens. Default 15 minutes.
	AccessTTL time.Duration
	// Algorithm signs: token.EdDSA (default) or token.ES256.
	Algorithm string
	// Start is where the clock starts. Default: the current time, in whole
	// seconds.
	Start time.Time
	// PublicURL is the verifier's Config.PublicURL: the base URL the
	// handlers under test are addressed at, which DPoP proofs name
	// (DPoPProof). Empty: its Middleware refuses DPoP requests, as in
	// production.
	PublicURL string
}

// Authority issues and revokes tokens in memory. Build it with New.
type Authority struct {
	cfg Config
	key token.SigningKey
	set *revocation.Set
	v   *verifier.Verifier

	clock *testtime.Clock // the authority's and its verifier's

	mu       sync.Mutex
	seq      int64
	gens     map[string]int64    // subject -> generation (sgen of new tokens)
	sessions map[string]*session // by id
	refresh  map[string]string   // refresh token -> session id
	spent    map[string]string   // rotated refresh token -> session id
}

type session struct {
	subject string
	claims  map[string]any
	jkt     string // the DPoP key's thumbprint, for a bound session
	revoked bool
}

// New returns an Authority. It panics if cfg.Algorithm is neither EdDSA nor
// ES256, a mistake in the test itself.
func New(cfg Config) *Authority {
	if cfg.Issuer == "" {
		cfg.Issuer = "https://tegata.test"
	}
	if cfg.Audience == "" {
		cfg.Audience = "tegata"
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = 15 * time.Minute
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = token.EdDSA
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Now().Truncate(time.Second)
	}
	priv, err := token.GenerateKey(cfg.Algorithm)
	if err != nil {
		panic(fmt.Sprintf("verifiertest: %v", err))
	}
	a := &Authority{cfg: cfg, clock: testtime.NewClock(cfg.Start), set: revocation.NewSet(0),
		key:  token.SigningKey{ID: "verifiertest-" + randomID()[:8], Algorithm: cfg.Algorithm, Private: priv},
		gens: map[string]int64{}, sessions: map[string]*session{}, refresh: map[string]string{}, spent: map[string]string{}}
	keys, err := token.NewKeySet(token.PublicKey{ID: a.key.ID, Algorithm: a.key.Algorithm, Key: priv.Public()})
	if err != nil {
		panic(fmt.Sprintf("verifiertest: %v", err))
	}
	vcfg := verifier.Config{Issuer: cfg.Issuer, Audience: cfg.Audience, MaxLifetime: cfg.AccessTTL, PublicURL: cfg.PublicURL}
	vcfg.Clock = a.clock
	vcfg.Local = &localverifier.Source{Keys: func() token.KeyLookup { return keys }, Set: a.set}
	if a.v, err = verifier.New(context.Background(), vcfg); err != nil {
		panic(fmt.Sprintf("verifiertest: %v", err))
	}
	return a
}

// Verifier returns the verifier that trusts this authority: it sees every
// revocation as soon as the revoking call returns, and its clock is the
// authority's. Use its Middleware in front of the handlers under test.
func (a *Authority) Verifier() *verifier.Verifier { return a.v }

// Now returns the authority's clock.
func (a *Authority) Now() time.Time { return a.clock.Now() }

// Advance moves the clock forward, for the verifier too: past AccessTTL,
// access tokens expire.
func (a *Authority) Advance(d time.Duration) { a.clock.Add(d) }

// CreateSession signs subject in with the application claims (copied into
// every access token of the session, like POST /v1/sessions) and returns its
// tokens. Reserved claim names (token.IsReserved) panic: the real authority
// refuses them.
func (a *Authority) CreateSession(subject string, claims map[string]any) client.Tokens {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := randomID()
	a.sessions[id] = &session{subject: subject, claims: maps.Clone(claims)}
	return a.tokens(id)
}

// CreateDPoPSession is CreateSession for a client holding a DPoP key
// (RFC 9449), whose public half is key (Ed25519, P-256 or RSA): the
// session is bound to it as POST /v1/sessions binds one with dpop_jkt, so
// its access tokens carry cnf.jkt (TokenType "DPoP") and the Verifier
// accepts them only as "Authorization: DPoP <token>" with a proof signed by
// that key (DPoPProof). Refresh keeps the binding; unlike the authority,
// it asks for no proof. An unsupported key panics.
func (a *Authority) CreateDPoPSession(subject string, claims map[string]any, key crypto.PublicKey) client.Tokens {
	jkt, err := client.Thumbprint(key)
	if err != nil {
		panic(fmt.Sprintf("verifiertest: CreateDPoPSession: %v", err))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	id := randomID()
	a.sessions[id] = &session{subject: subject, claims: maps.Clone(claims), jkt: jkt}
	return a.tokens(id)
}

// DPoPProof signs the DPoP proof a client holding key sends with
// accessToken in a request of method to url (the URL the client
// addresses: Config.PublicURL and the path, for the Middleware), at the
// authority's clock, as client.TokenSource.Authorize does. Each call makes
// a new proof; the Verifier accepts a proof once. An unsupported key
// panics.
func (a *Authority) DPoPProof(key crypto.Signer, method, url, accessToken string) string {
	p, err := dpop.NewProof(key, method, url, accessToken, "", a.Now())
	if err != nil {
		panic(fmt.Sprintf("verifiertest: DPoPProof: %v", err))
	}
	return p
}

// Refresh rotates refreshToken like POST /v1/token/refresh: new access and
// refresh tokens, carrying the session's current claims. A refresh token
// that was already used revokes its session (theft) and, like an unknown
// one or one of a revoked session, fails with an error matching
// client.ErrInvalidGrant.
func (a *Authority) Refresh(refreshToken string) (client.Tokens, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if id, ok := a.spent[refreshToken]; ok {
		a.revokeSession(id)
		return client.Tokens{}, invalidGrant("refresh token reuse detected: the session is revoked")
	}
	id, ok := a.refresh[refreshToken]
	if !ok {
		return client.Tokens{}, invalidGrant("unknown refresh token")
	}
	if a.sessions[id].revoked {
		return client.Tokens{}, invalidGrant("session revoked")
	}
	delete(a.refresh, refreshToken)
	a.spent[refreshToken] = id
	return a.tokens(id), nil
}

func invalidGrant(desc string) error {
	return &client.Error{Status: 400, Code: "invalid_grant", Description: desc}
}

// RevokeSession signs one session out: its access tokens are refused from
// now on and its refresh token no longer works. Unknown or already revoked
// sessions are left as they are.
func (a *Authority) RevokeSession(sessionID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revokeSession(sessionID)
}

func (a *Authority) revokeSession(id string) {
	s, ok := a.sessions[id]
	if !ok || s.revoked {
		return
	}
	s.revoked = true
	a.apply(revocation.Entry{Kind: revocation.KindSession, Session: id})
}

// RevokeSubject signs subject out everywhere (scope "sessions"): every
// access token issued before now is refused and every session ends.
func (a *Authority) RevokeSubject(subject string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cutoff(subject)
	for _, s := range a.sessions {
		if s.subject == subject {
			s.revoked = true
		}
	}
}

// RevokeAccess cuts off subject's access tokens issued before now but
// keeps its sessions (scope "access"): the next refresh mints a token with
// claims, when not nil, instead of the session's claims (a role change
// that takes effect at once).
func (a *Authority) RevokeAccess(subject string, claims map[string]any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cutoff(subject)
	if claims == nil {
		return
	}
	for _, s := range a.sessions {
		if s.subject == subject {
			s.claims = maps.Clone(claims)
		}
	}
}

// cutoff starts a new generation for subject: tokens of an older one are
// revoked. Called with a.mu held.
func (a *Authority) cutoff(subject string) {
	a.gens[subject]++
	a.apply(revocation.Entry{Kind: revocation.KindSubject, Subject: subject, Generation: a.gens[subject]})
}

// apply records an entry in the verifier's set. The set is unbounded, so
// it cannot refuse one. Called with a.mu held.
func (a *Authority) apply(e revocation.Entry) {
	a.seq++
	now := a.clock.Now()
	e.Seq, e.CreatedAt, e.ExpiresAt = a.seq, now, now.Add(a.cfg.AccessTTL+verifier.DefaultLeeway)
	if err := a.set.Apply(e); err != nil {
		panic(fmt.Sprintf("verifiertest: apply revocation: %v", err))
	}
}

// tokens mints the session's next access and refresh tokens. Called with
// a.mu held.
func (a *Authority) tokens(id string) client.Tokens {
	s := a.sessions[id]
	c := a.claims(s.subject, id, s.claims)
	c.JKT = s.jkt
	typ := "Bearer"
	if s.jkt != "" {
		typ = "DPoP"
	}
	rt := randomID() + randomID()
	a.refresh[rt] = id
	return client.Tokens{SessionID: id, AccessToken: a.sign(c), TokenType: typ,
		ExpiresIn: int64(a.cfg.AccessTTL / time.Second), AccessExpiresAt: c.Expiry, RefreshToken: rt}
}

func (a *Authority) claims(subject, sid string, extra map[string]any) token.Claims {
	now := a.clock.Now()
	return token.Claims{Issuer: a.cfg.Issuer, Subject: subject, Audience: []string{a.cfg.Audience},
		IssuedAt: now, Expiry: now.Add(a.cfg.AccessTTL), ID: randomID(), SessionID: sid,
		Generation: a.gens[subject], Extra: maps.Clone(extra)}
}

// Mint signs c as this authority's access token, whatever it says, for
// tests of what an app does with unusual claims. Empty fields are filled
// as CreateSession would fill them (issuer, audience, now, AccessTTL, new
// ids, the subject's current generation); set them to mint expired or
// foreign tokens. The token belongs to no session unless c.SessionID names
// one.
func (a *Authority) Mint(c token.Claims) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	def := a.claims(c.Subject, randomID(), nil)
	if c.Issuer == "" {
		c.Issuer = def.Issuer
	}
	if c.Audience == nil {
		c.Audience = def.Audience
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = def.IssuedAt
	}
	if c.Expiry.IsZero() {
		c.Expiry = c.IssuedAt.Add(a.cfg.AccessTTL)
	}
	if c.ID == "" {
		c.ID = def.ID
	}
	if c.SessionID == "" {
		c.SessionID = def.SessionID
	}
	if c.Generation == 0 {
		c.Generation = def.Generation
	}
	return a.sign(c)
}

func (a *Authority) sign(c token.Claims) string {
	raw, err := token.Sign(a.key, c)
	if err != nil {
		panic(fmt.Sprintf("verifiertest: sign: %v", err))
	}
	return raw
}

// randomID returns 128 random bits in base64url, like the authority's ids.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}
