package authority

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/strictjson"
	"github.com/tegata-dev/tegata/token"
)

// Limits on what a caller may put into a token, so every token stays well
// under the verifiers' size cap (token.DefaultMaxSize).
const (
	MaxSubjectLen = 255
	MaxDeviceLen  = 200
	MaxClaimsLen  = 4096
)

// SessionRequest is the input of CreateSession.
type SessionRequest struct {
	Subject string
	// Claims go into every access token of the session (roles, scopes...).
	// Reserved names (iss, sub, aud, exp, sid...) are refused.
	Claims map[string]any
	Device string // a label for the "your devices" list
	// DPoPJKT, when set, binds the session to the DPoP key with this RFC
	// 7638 thumbprint from the start: its access tokens carry cnf.jkt and
	// its refresh needs a proof signed by that key.
	DPoPJKT string
	// By names the caller, for the session.bind and console.sign_in audit
	// records.
	By string
	// Console says the operator console opens this session for an API
	// key: only such a session may have a subject beginning with
	// ConsoleSubjectPrefix. The HTTP API never sets it, so no app can
	// sign a user in as an operator, whatever subject it is given. The
	// sign-in is audited (store.ActionConsoleSignIn), naming the key's id.
	Console bool
}

// ConsoleSubjectPrefix begins the subject of the operator console's own
// sessions (followed by the API key's id), and no other session's.
const ConsoleSubjectPrefix = store.ConsoleSubjectPrefix

// ConsoleAudience is the aud claim of the console's sessions' access
// tokens, in place of Config.Audience (which may not take this value): the
// console accepts only it (ConsoleVerifier), and the apps' verifiers, which
// expect Config.Audience, refuse a console token with their audience error.
const ConsoleAudience = "tegata-console"

// Tokens is what a client receives on sign-in and refresh.
type Tokens struct {
	SessionID        string
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	// DPoP: the access token is bound to the session's DPoP key (token
	// type DPoP, RFC 9449 §5).
	DPoP bool
}

// CreateSession signs a subject in on a new device.
func (a *Authority) CreateSession(ctx context.Context, req SessionRequest) (Tokens, error) {
	if err := checkSubject(req.Subject); err != nil {
		return Tokens{}, err
	}
	if store.IsConsoleSubject(req.Subject) != req.Console {
		return Tokens{}, invalidRequest("subjects beginning with %q are the operator console's own", ConsoleSubjectPrefix)
	}
	// Devices are shown to people (a "your devices" page, `tegata
	// sessions list`) and are often a User-Agent the client chose: no
	// control characters, which a terminal or a log viewer would act on.
	if len(req.Device) > MaxDeviceLen || !isPlainText(req.Device) || strings.ContainsFunc(req.Device, unicode.IsControl) {
		return Tokens{}, invalidRequest("device must be valid UTF-8 without control characters, of at most %d bytes", MaxDeviceLen)
	}
	claims, err := encodeClaims(req.Claims)
	if err != nil {
		return Tokens{}, err
	}
	binding, err := dpopBinding(req.DPoPJKT)
	if err != nil {
		return Tokens{}, err
	}
	now := a.cfg.Clock.Now()
	// Before anything is stored: a session whose first token cannot be
	// minted would be half made.
	if _, ok := a.ring().current(now); !ok {
		return Tokens{}, errNoSigningKey
	}
	if err := a.ensureLease(ctx, now); err != nil {
		return Tokens{}, err
	}
	refresh := newRefreshToken()
	s := store.Session{
		ID: newSessionID(), Subject: req.Subject, Device: req.Device, Claims: claims,
		CreatedAt: now, RefreshedAt: now, ExpiresAt: now.Add(a.cfg.SessionTTL), Binding: binding,
	}
	rt := store.RefreshToken{Hash: HashSecret(refresh), SessionID: s.ID, CreatedAt: now, ExpiresAt: a.refreshExpiry(s, now)}
	var created store.Created
	err = a.withSlot(ctx, func(slot *store.SlotRequest) error {
		var err error
		created, err = a.store.CreateSession(ctx, newSession(req, s, rt, slot))
		return err
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("authority: create session: %w", err)
	}
	s.Status = created.Status
	return a.tokens(s, created.Generation, refresh, rt.ExpiresAt, now)
}

// newSession is what CreateSession stores: the session, its first refresh
// token and who signed it in; for the console, the record of the sign-in,
// naming the API key by its id (the rest of the subject), which unlike its
// name is never used again.
func newSession(req SessionRequest, s store.Session, rt store.RefreshToken, slot *store.SlotRequest) store.NewSession {
	ns := store.NewSession{Session: s, Refresh: rt, Slot: slot, Actor: store.Actor{By: req.By, Reason: "sign-in"}}
	if req.Console {
		ns.Record = store.ActionConsoleSignIn
		ns.Actor.Reason = "console sign-in, key " + strings.TrimPrefix(req.Subject, ConsoleSubjectPrefix)
	}
	return ns
}

func (a *Authority) refreshExpiry(s store.Session, now time.Time) time.Time {
	return minTime(now.Add(a.cfg.RefreshTTL), s.ExpiresAt)
}

// tokens mints an access token for the session and packs the answer.
func (a *Authority) tokens(s store.Session, gen int64, refresh string, refreshExp, now time.Time) (Tokens, error) {
	at, exp, err := a.mint(s, gen, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{SessionID: s.ID, AccessToken: at, AccessExpiresAt: exp, RefreshToken: refresh, RefreshExpiresAt: refreshExp,
		DPoP: tokenJKT(s.Binding) != ""}, nil
}

// mintable reports whether mint can sign a token for s at now: a key
// signs then and the stored claims are ones the token rules accept (every
// API checks them on input, but a store written to directly may hold
// others). Everything else mint does cannot fail but for the system's
// random source.
func (a *Authority) mintable(s store.Session, now time.Time) error {
	if _, ok := a.ring().current(now); !ok {
		return errNoSigningKey
	}
	if !a.leased(now) {
		return errNoLease
	}
	if len(s.Claims) > 0 {
		if err := signableClaims(s.Claims); err != nil {
			return fmt.Errorf("authority: session %s: stored claims cannot be signed: %w", s.ID, err)
		}
	}
	return nil
}

func (a *Authority) mint(s store.Session, gen int64, now time.Time) (string, time.Time, error) {
	key, ok := a.ring().current(now)
	if !ok {
		return "", time.Time{}, errNoSigningKey
	}
	var extra map[string]any
	if len(s.Claims) > 0 {
		if err := json.Unmarshal(s.Claims, &extra); err != nil {
			return "", time.Time{}, fmt.Errorf("authority: session %s: stored claims: %w", s.ID, err)
		}
	}
	// Tokens carry whole seconds; truncating exp keeps it inside the session.
	now = now.Truncate(time.Second)
	exp := minTime(now.Add(a.accessTTL(now)), s.ExpiresAt).Truncate(time.Second)
	at, err := token.Sign(key, token.Claims{
		Issuer: a.cfg.Issuer, Subject: s.Subject, Audience: []string{a.audience(s.Subject)},
		IssuedAt: now, Expiry: exp, ID: newTokenID(), SessionID: s.ID, Generation: gen,
		Status: a.statusRef(s.Status), Extra: extra, JKT: tokenJKT(s.Binding),
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("authority: sign: %w", err)
	}
	return at, exp, nil
}

// audience is the aud claim of a subject's access tokens: the apps' for
// every subject but the console's own.
func (a *Authority) audience(subject string) string {
	if store.IsConsoleSubject(subject) {
		return ConsoleAudience
	}
	return a.cfg.Audience
}

// tokenJKT is the cnf.jkt of a session's access tokens: the DPoP key's.
// A DBSC-bound session's tokens live in the web gate's cookies and are
// checked there, so they carry none.
func tokenJKT(b store.Binding) string {
	if b.Kind == store.BindingDPoP {
		return b.Thumbprint
	}
	return ""
}

// Refresh exchanges a refresh token for a new access token and a new
// refresh token. Every refusal is an *Error with CodeInvalidGrant; a
// refusal because the token was already rotated also matches ErrReuse, and
// the session has then been revoked. A device-bound session needs
// RefreshWith (or RefreshDBSC).
func (a *Authority) Refresh(ctx context.Context, refresh string) (Tokens, error) {
	return a.RefreshWith(ctx, RefreshRequest{RefreshToken: refresh})
}

// RefreshWith is Refresh with the proofs a device-bound session needs: a
// DPoP-bound session refreshes only with a proof of its key
// (CodeInvalidDPoPProof otherwise, nothing spent), a DBSC-bound one only
// with a DBSC proof (checkDBSC). A proof signed by another key is taken for
// theft, as a reused refresh token is: the session is revoked.
func (a *Authority) RefreshWith(ctx context.Context, req RefreshRequest) (Tokens, error) {
	refresh := req.RefreshToken
	presented, err := parseRefresh(refresh)
	if err != nil {
		return Tokens{}, grantError(err.Error())
	}
	now := a.cfg.Clock.Now()
	until, err := a.coverUntil(ctx, now)
	if err != nil {
		return Tokens{}, err
	}
	if err := a.ensureLease(ctx, now); err != nil {
		return Tokens{}, err
	}
	next := newRefreshToken()
	rot := store.Rotation{
		Presented:    presented,
		Next:         store.RefreshToken{Hash: HashSecret(next), CreatedAt: now, ExpiresAt: now.Add(a.cfg.RefreshTTL)},
		NextSealed:   a.tokSealer.seal([]byte(next), presented[:]),
		Now:          now,
		Grace:        max(a.cfg.RefreshGrace, 0), // negative: off
		RevokedUntil: until,
		// The refresh token is spent only if its access token can be
		// minted: otherwise the client's retry would look like theft. A
		// grace replay meets the binding too: a copied refresh token within
		// the window must not get the successor without the device's key,
		// nor with a DBSC proof captured in flight (its challenge was used).
		Check: func(s store.Session, _ int64) (time.Time, error) {
			if err := checkConsole(s, req.Console); err != nil {
				return time.Time{}, err
			}
			at, err := checkBinding(s, req, now)
			if err != nil {
				return time.Time{}, err
			}
			return at, a.mintable(s, now)
		},
	}
	var res store.RotateResult
	err = a.withSlot(ctx, func(slot *store.SlotRequest) error {
		rot.Slot = slot
		var err error
		res, err = a.store.RotateRefresh(ctx, rot)
		return err
	})
	var bf *errBindingFailed
	var refused *Error
	switch {
	case errors.As(err, &bf):
		return Tokens{}, a.refusedForBinding(ctx, bf)
	case errors.As(err, &refused):
		if errors.Is(err, errConsoleOnly) {
			a.log.Warn("refresh of an operator console session refused: only the console refreshes it", "detail", refused.Detail)
		}
		return Tokens{}, err
	case errors.Is(err, store.ErrChallengeUsed):
		return Tokens{}, challengeUsed()
	case err != nil:
		return Tokens{}, fmt.Errorf("authority: rotate refresh token: %w", err)
	}
	switch res.Outcome {
	case store.Rotated:
	case store.Replayed:
		pt, err := a.tokSealer.open(res.Sealed, presented[:])
		if err != nil {
			return Tokens{}, fmt.Errorf("authority: session %s: open successor: %w", res.Session.ID, err)
		}
		next = string(pt)
	case store.Reused:
		a.applyLocal(res.Entry)
		a.count.theft.Add(1)
		a.log.Warn("refresh token reuse detected: session revoked",
			"sid", res.Session.ID, "sub", res.Session.Subject, "seq", res.Entry.Seq)
		return Tokens{}, &Error{Code: CodeInvalidGrant, kind: ErrReuse,
			Description: "refresh token was already used; the session has been revoked"}
	default:
		return Tokens{}, grantError(res.Reason)
	}
	return a.tokens(res.Session, res.Generation, next, a.refreshExpiry(res.Session, res.Session.RefreshedAt), now)
}

// grantError is the one answer to every refused refresh (RFC 6749 §5.2):
// the client learns nothing about why; the log does.
func grantError(detail string) error {
	return &Error{Code: CodeInvalidGrant, Description: "refresh token is invalid, expired or revoked", Detail: detail}
}

// Sessions lists a subject's live sessions, newest first.
func (a *Authority) Sessions(ctx context.Context, subject string) ([]store.Session, error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	now := a.cfg.Clock.Now()
	all, err := a.store.ListSessions(ctx, subject, now)
	if err != nil {
		return nil, err
	}
	// A session whose refresh token idled out is over, though its absolute
	// end lies ahead: list it neither as live nor with that end.
	live := all[:0]
	for _, s := range all {
		s.ExpiresAt = a.refreshExpiry(s, s.RefreshedAt)
		if s.ExpiresAt.After(now) {
			live = append(live, s)
		}
	}
	return live, nil
}

// checkSubject is the rule for every subject the authority takes (a
// session's, a revocation's, a listing's): present, at most MaxSubjectLen
// bytes of UTF-8 without control characters, and without surrounding
// whitespace, almost surely a slip (a pasted line, a padded column) that
// names a different user than meant. No session has such a subject, so a
// revocation or a listing that names one would reach nobody.
func checkSubject(s string) error {
	switch {
	case s == "":
		return invalidRequest("subject is required")
	case len(s) > MaxSubjectLen:
		return invalidRequest("subject is longer than %d bytes", MaxSubjectLen)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, isControl):
		return invalidRequest("subject must be valid UTF-8 without control characters")
	case strings.TrimSpace(s) != s:
		return invalidRequest("subject %q has leading or trailing whitespace", s)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// isPlainText reports whether s can be stored in a text column of every
// store: Postgres refuses invalid UTF-8 and NUL, and that refusal must be
// the client's 400, not a 500.
func isPlainText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// encodeClaims validates app claims and returns them as stored.
func encodeClaims(c map[string]any) ([]byte, error) {
	if len(c) == 0 {
		return nil, nil
	}
	for name := range c {
		if token.IsReserved(name) {
			return nil, invalidRequest("claim %q is reserved and set by the authority", name)
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, invalidRequest("claims cannot be encoded: %v", err)
	}
	if len(b) > MaxClaimsLen {
		return nil, invalidRequest("claims are %d bytes encoded; the limit is %d", len(b), MaxClaimsLen)
	}
	// The rules every token must meet (nesting depth above all), checked
	// now: claims that are stored but cannot be signed would fail every
	// sign-in and refresh of the session later.
	if err := signableClaims(b); err != nil {
		return nil, invalidRequest("claims cannot go into a token: %v", err)
	}
	return b, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// signableClaims reports whether data, a JSON object of application claims,
// can travel in a token that token.Sign mints and token.Verify accepts: the
// strict JSON Verify reads (valid UTF-8, no name twice at any depth,
// nesting within the limit as counted inside the payload, where the claims
// object sits as the payload does) and no reserved name. Errors wrap
// token.ErrClaims.
func signableClaims(data []byte) error {
	m, err := strictjson.DecodeObjectValue(data, "claims", token.ErrClaims)
	if err != nil {
		return err
	}
	for name := range m {
		if token.IsReserved(name) {
			return fmt.Errorf("%w: claim %q is reserved", token.ErrClaims, name)
		}
	}
	return nil
}
