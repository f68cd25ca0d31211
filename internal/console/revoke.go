package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/inforce"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// What a revocation from a user's page does (the form's "op").
const (
	opDevice     = "device"     // sign out one session
	opEverywhere = "everywhere" // sign out every session of the subject
	opClaims     = "claims"     // cut off access tokens, new claims on refresh
)

// revocationForm is a revocation the operator asked for.
type revocationForm struct {
	Op, Subject, Session, Claims, Reason string
}

// Describe says in words what the revocation does.
func (f revocationForm) Describe() string {
	switch f.Op {
	case opDevice:
		return "Sign out one device of this user"
	case opEverywhere:
		return "Sign this user out everywhere"
	}
	return "Change this user's claims"
}

// revoke is POST /console/user/revoke. Without confirmed=yes it only
// shows what would happen, with a form to confirm; confirmed, it revokes
// and goes to the page that watches the revocation reach the verifiers.
func (c *Console) revoke(w http.ResponseWriter, r *http.Request, op *operator) error {
	f := revocationForm{Op: r.PostFormValue("op"), Subject: r.PostFormValue("sub"), Session: r.PostFormValue("sid"),
		Claims: r.PostFormValue("claims"), Reason: r.PostFormValue("reason")}
	claims, err := checkForm(f)
	if err != nil {
		return err
	}
	if r.PostFormValue("confirmed") != "yes" {
		return c.render(w, op, "confirm_action", f.Describe(), f)
	}
	e, err := c.doRevoke(r, op, f, claims)
	if err != nil {
		return err
	}
	c.log.Info("console: revocation", "by", op.keyName, "op", f.Op, "seq", e.Seq)
	q := url.Values{"seq": {strconv.FormatInt(e.Seq, 10)}, "sub": {f.Subject}, "op": {f.Op}}
	http.Redirect(w, r, Prefix+"confirm?"+q.Encode(), http.StatusSeeOther)
	return nil
}

// checkForm checks a revocation form and decodes its claims.
func checkForm(f revocationForm) (map[string]any, error) {
	bad := func(msg string) error { return &pageError{status: http.StatusBadRequest, msg: msg} }
	if err := plainText(map[string]string{"sub": f.Subject, "sid": f.Session, "reason": f.Reason}); err != nil {
		return nil, err
	}
	switch f.Op {
	case opDevice:
		if f.Session == "" {
			return nil, bad("Which session? The form named none.")
		}
	case opEverywhere:
	case opClaims:
		if len(f.Claims) > authority.MaxClaimsLen {
			return nil, bad("The claims are too long.")
		}
		var claims map[string]any
		d := json.NewDecoder(bytes.NewReader([]byte(f.Claims)))
		if err := d.Decode(&claims); err != nil || d.More() || claims == nil {
			return nil, bad("The claims must be one JSON object, such as {\"roles\": [\"viewer\"]}.")
		}
		return claims, nil
	default:
		return nil, bad("Unknown action.")
	}
	if f.Subject == "" {
		return nil, bad("Which user? The form named none.")
	}
	return nil, nil
}

func (c *Console) doRevoke(r *http.Request, op *operator, f revocationForm, claims map[string]any) (revocation.Entry, error) {
	// The confirmation page waits for it next: the append's notification
	// has every node ask its verifiers with the entry (httpapi's ?confirm=
	// does the same).
	ctx, actor := store.WithConfirmation(r.Context()), op.actor(f.Reason)
	switch f.Op {
	case opDevice:
		s, _, err := c.st.Session(ctx, f.Session)
		if err != nil || s.Subject != f.Subject {
			return revocation.Entry{}, &pageError{status: http.StatusNotFound, msg: "This user has no such session."}
		}
		return c.a.RevokeSession(ctx, f.Session, actor)
	case opEverywhere:
		return c.a.RevokeSubject(ctx, authority.SubjectRevocation{Subject: f.Subject, Scope: authority.ScopeSessions, Actor: actor})
	}
	return c.a.RevokeSubject(ctx, authority.SubjectRevocation{Subject: f.Subject, Scope: authority.ScopeAccess, Claims: claims, Actor: actor})
}

// confirmWait bounds how long the confirmation page's first rendering
// waits; confirmPoll how long each of its script's polls does.
const (
	confirmWait = 50 * time.Millisecond
	confirmPoll = 2 * time.Second
)

type confirmData struct {
	Seq     int64
	Subject string
	Op      string
	C       inforce.Confirmation
}

// confirmPage is GET /console/confirm?seq=: where the revocation stands on
// the verifiers, named while pending; its script polls until in force.
func (c *Console) confirmPage(w http.ResponseWriter, r *http.Request, op *operator) error {
	seq, err := seqParam(r)
	if err != nil {
		return err
	}
	d := confirmData{Seq: seq, Subject: r.FormValue("sub"), Op: r.FormValue("op")}
	d.C = c.cfg.InForce.Confirm(r.Context(), seq, confirmWait)
	return c.render(w, op, "confirm", "Revocation", d)
}

// confirmJSON is GET /console/api/confirm?seq=: the confirmation, after
// waiting up to confirmPoll for it to be in force.
func (c *Console) confirmJSON(w http.ResponseWriter, r *http.Request, _ *operator) error {
	seq, err := seqParam(r)
	if err != nil {
		return err
	}
	return writeJSON(w, c.cfg.InForce.Confirm(r.Context(), seq, confirmPoll))
}

// seqParam reads ?seq=, a log position (0: the head now).
func seqParam(r *http.Request) (int64, error) {
	seq, err := strconv.ParseInt(r.FormValue("seq"), 10, 64)
	if err != nil || seq < 0 {
		return 0, &pageError{status: http.StatusBadRequest, msg: "seq must be a log position."}
	}
	return seq, nil
}
