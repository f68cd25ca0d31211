package ssf

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// Event types and delivery methods.
const (
	EventSessionRevoked    = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	EventTokenClaimsChange = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
	EventVerification      = "https://schemas.openid.net/secevent/ssf/event-type/verification"

	MethodPush = "urn:ietf:rfc:8935"
	MethodPoll = "urn:ietf:rfc:8936"
)

// EventsSupported are the event types a stream may request; the
// verification event is sent on request whatever a stream asked for.
var EventsSupported = []string{EventSessionRevoked, EventTokenClaimsChange}

// event is one CAEP event derived from a log entry.
type event struct {
	typ   string
	subID any
	body  map[string]any
}

// eventOf derives the event of a log entry, if it has one:
//   - a session revoked (by an operator, by the client's RFC 7009 sign-out,
//     because its refresh token was reused or its device failed a binding
//     proof): session-revoked about the
//     session and its user;
//   - a subject signed out everywhere: one session-revoked about the user;
//   - an access cutoff that carries new claims: token-claims-change with
//     them. An access cutoff without new claims has no CAEP event type.
//
// The operator console's own sessions (store.ConsoleSubjectPrefix) are no
// user's of the apps a receiver serves: their revocations have no event.
func eventOf(e store.DetailedEntry, issuer string) (event, bool) {
	d := e.Detail
	if store.IsConsoleSubject(e.Subject) || store.IsConsoleSubject(d.Subject) {
		return event{}, false
	}
	body := map[string]any{
		"event_timestamp":   e.CreatedAt.Unix(),
		"initiating_entity": entity(d),
		"reason_admin":      map[string]string{"en": reasonAdmin(e)},
	}
	user := map[string]any{"format": "iss_sub", "iss": issuer, "sub": e.Subject}
	switch {
	case e.Kind == revocation.KindSession:
		sub := map[string]any{"format": "complex", "session": map[string]any{"format": "opaque", "id": e.Session}}
		if d.Subject != "" {
			sub["user"] = map[string]any{"format": "iss_sub", "iss": issuer, "sub": d.Subject}
		}
		return event{typ: EventSessionRevoked, subID: sub, body: body}, true
	case e.Kind == revocation.KindSubject && d.EndSessions:
		return event{typ: EventSessionRevoked, subID: user, body: body}, true
	case e.Kind == revocation.KindSubject && hasClaims(d.Claims):
		body["claims"] = d.Claims
		return event{typ: EventTokenClaimsChange, subID: user, body: body}, true
	}
	return event{}, false
}

func hasClaims(c json.RawMessage) bool {
	var m map[string]json.RawMessage
	return len(c) > 0 && json.Unmarshal(c, &m) == nil && len(m) > 0
}

// entity is CAEP's initiating_entity: as recorded, else by cause.
func entity(d store.EntryDetail) string {
	switch {
	case d.Entity != "":
		return d.Entity
	case d.Cause == store.CauseSessionReuse, d.Cause == store.CauseBindingFailed:
		return "system"
	}
	return "admin"
}

// reasonAdmin is never empty (the CAEP interoperability profile requires
// it): the reason given with the revocation, else one per cause.
func reasonAdmin(e store.DetailedEntry) string {
	d := e.Detail
	switch {
	case d.Reason != "":
		return d.Reason
	case d.Cause == store.CauseSessionReuse:
		return "Refresh token reuse detected: session revoked"
	case d.Cause == store.CauseBindingFailed:
		return "Device binding proof failed: session revoked"
	case e.Kind == revocation.KindSession:
		return "Session revoked"
	case d.EndSessions:
		return "All sessions of the user revoked"
	}
	return "Claims changed; earlier access tokens revoked"
}

// delivered is events_delivered: the supported events a stream requested
// (every supported one when it requested none in particular).
func delivered(requested []string) []string {
	if requested == nil {
		return slices.Clone(EventsSupported)
	}
	out := []string{}
	for _, e := range EventsSupported {
		if slices.Contains(requested, e) {
			out = append(out, e)
		}
	}
	return out
}

// setClaims is the payload of a Security Event Token as SSF profiles it:
// one event, sub_id at the top level, no sub and no exp.
type setClaims struct {
	Iss    string         `json:"iss"`
	Jti    string         `json:"jti"`
	Iat    int64          `json:"iat"`
	Aud    string         `json:"aud"`
	Txn    string         `json:"txn,omitempty"`
	SubID  any            `json:"sub_id"`
	Events map[string]any `json:"events"`
}

// eventJTI and verificationJTI name SETs so that a SET sent again (after a
// failure or a restart) has the jti it had, and a poll acknowledgement
// tells what it acknowledges.
func eventJTI(stream string, seq int64) string { return stream + "." + strconv.FormatInt(seq, 10) }
func verificationJTI(stream string, n int64) string {
	return stream + ".v" + strconv.FormatInt(n, 10)
}

// txn is shared by the SETs of one revocation, across streams.
func txn(seq int64) string { return "revocation-" + strconv.FormatInt(seq, 10) }

func marshalSET(c setClaims) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// eventSET builds the payload of a log entry's event for a stream.
func eventSET(issuer string, st store.Stream, e store.DetailedEntry, ev event, now time.Time) ([]byte, error) {
	return marshalSET(setClaims{Iss: issuer, Jti: eventJTI(st.ID, e.Seq), Iat: now.Unix(), Aud: st.Audience,
		Txn: txn(e.Seq), SubID: ev.subID, Events: map[string]any{ev.typ: ev.body}})
}

// verificationSET builds the payload of a stream's pending verification.
func verificationSET(issuer string, st store.Stream, now time.Time) ([]byte, error) {
	body := map[string]any{}
	if st.VerifyState != "" {
		body["state"] = st.VerifyState
	}
	return marshalSET(setClaims{Iss: issuer, Jti: verificationJTI(st.ID, st.VerifySeq), Iat: now.Unix(),
		Aud: st.Audience, SubID: map[string]any{"format": "opaque", "id": st.ID},
		Events: map[string]any{EventVerification: body}})
}
