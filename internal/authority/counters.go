package authority

import (
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// Kinds of revocation this node records, as Counters reports them.
const (
	RevokedSession = "session" // one session signed out (API, RFC 7009, bulk)
	RevokedSubject = "subject" // a subject signed out everywhere or cut off
	RevokedTheft   = "theft"   // a session ended because its refresh token was reused
	RevokedAPIKey  = "api_key" // an API key revoked
	// RevokedBindingFailed: a bound session ended because its device
	// failed a proof of its key.
	RevokedBindingFailed = "binding_failed"
)

// counters count what this node recorded since it started; they are read
// by metrics and never labelled by user, session or token.
type counters struct {
	session, subject, theft, apiKey, bindingFailed atomic.Uint64
}

func (c *counters) entry(e revocation.Entry) {
	if e.Seq == 0 {
		return // already revoked: nothing recorded
	}
	switch e.Kind {
	case revocation.KindSession:
		c.session.Add(1)
	case revocation.KindSubject:
		c.subject.Add(1)
	}
}

// Counters returns how many revocations this node has recorded since it
// started, by kind (RevokedSession, RevokedSubject, RevokedTheft,
// RevokedAPIKey, RevokedBindingFailed). A theft detection or a failed
// binding proof is counted as such, not as session.
func (a *Authority) Counters() map[string]uint64 {
	return map[string]uint64{
		RevokedSession: a.count.session.Load(),
		RevokedSubject: a.count.subject.Load(),
		RevokedTheft:   a.count.theft.Load(),
		RevokedAPIKey:  a.count.apiKey.Load(),

		RevokedBindingFailed: a.count.bindingFailed.Load(),
	}
}

// LogReadAt is when this node last read the revocation log to its end: a
// node whose store does not answer falls behind the clock.
func (a *Authority) LogReadAt() time.Time { return time.Unix(0, a.caughtUp.Load()) }
