// Package history is the record of a chaos run (tegata-bench chaos) and
// the checker that reads it afterwards.
//
// A history is a file of JSON lines, one Event per line, written while the
// run goes on: every operation the load made with its start and its answer,
// every verdict a verifier or gate gave, the verifiers' states, the faults
// the nemesis injected, and at the end what the database holds. Check reads
// the whole history and names every event that breaks one of tegata's
// promises (docs/semantics.md), so a failed run can be read, and checked
// again, from its file alone.
//
// Times are monotonic nanoseconds since the run began, taken by the harness
// (one process, one clock): an operation's Start is taken before it is sent
// and its T once its answer is back, so whatever the authority or a
// verifier did for it happened between the two.
//
// A Writer may be used from many goroutines; Check is a pure function.
package history

// Event kinds. Each names the fields it fills; the others stay empty.
const (
	// KindStart: a verifier or gate instance began (P, StaleMS, Detail
	// names what it is; SkewMS its clock offset). A restart from nothing
	// is a new KindStart for the same P.
	KindStart = "start"
	// KindSession: a session was created (Start, T, OK, SID, Sub, Tok,
	// SGen, NewRT: the first refresh token).
	KindSession = "session"
	// KindRefresh: a refresh token was presented (Start, T, SID, RT; when
	// OK: NewRT, Tok, SGen; otherwise Verdict "invalid_grant" for a
	// definitive refusal or "error" for an answer that settles nothing).
	KindRefresh = "refresh"
	// KindRevoke: a revocation was acknowledged (Start, T, OK, Scope, SID
	// or Sub, Seq and SGen of its log entry, Confirm, InForce). A bulk
	// call writes one event per item, sharing Op.
	KindRevoke = "revoke"
	// KindVerify: a verifier's verdict on a token (Start, T, P, Tok, SID,
	// Sub, SGen, Pos and PosAfter: the verifier's position read just
	// before and just after, Verdict, Final for the probes made after the
	// faults ended). A gate's verdicts carry no positions.
	KindVerify = "verify"
	// KindState: a verifier's state sample (T, P, Ready, and PosAfter:
	// its position read after Ready, so at least what it held then).
	KindState = "state"
	// KindLink: the links of P to every authority node became isolated
	// (Detail "isolated": nothing passes one way or the other) or not any
	// more (Detail "healed"). Written after the change took effect.
	KindLink = "link"
	// KindFault: the nemesis injected or ended a fault (P the target,
	// Scope the fault's kind, Detail in words).
	KindFault = "fault"
	// KindFinal: a verifier's position once every fault had ended and the
	// run had settled (T, P, Pos).
	KindFinal = "final"
	// KindLogged: an entry the revocation log holds at the end (Seq,
	// Scope "session" or "subject", SID or Sub, SGen).
	KindLogged = "logged"
	// KindStored: a session the store holds at the end (SID).
	KindStored = "stored"
	// KindAudited: the end-of-run read of the store is complete: without
	// it the lost-write rule is not checked.
	KindAudited = "audited"
)

// Verdicts of KindVerify.
const (
	Accept       = "accept"
	Revoked      = "revoked"
	Stale        = "stale"
	Other        = "other" // refused for another reason (expired, key unknown...)
	InvalidGrant = "invalid_grant"
	Indefinite   = "error" // no answer, or one that settles nothing
)

// Follow is the Detail of the verdicts of a process asked about a revoked
// token again and again from the revocation's answer on, until it
// refuses it: the ones Result.Enforced is measured from. They carry the
// revocation's Op.
const Follow = "follow"

// Revocation scopes of KindRevoke.
const (
	ScopeSession = "session" // one session: a session entry
	ScopeSubject = "subject" // every session and access token of a subject: a subject entry
	ScopeAccess  = "access"  // a subject's access tokens (a role change): a subject entry
)

// Event is one line of a history.
type Event struct {
	T     int64  `json:"t"`               // ns since the run began: when it happened or was answered
	Start int64  `json:"start,omitempty"` // ns: when the operation was sent
	P     string `json:"p"`               // process: "load", "v17", "gate2", "node1", "nemesis"
	Kind  string `json:"kind"`
	Op    int64  `json:"op,omitempty"`

	OK      bool   `json:"ok,omitempty"`
	Verdict string `json:"verdict,omitempty"`
	Scope   string `json:"scope,omitempty"`

	Tok   string `json:"tok,omitempty"` // access token id (jti)
	SID   string `json:"sid,omitempty"`
	Sub   string `json:"sub,omitempty"`
	SGen  int64  `json:"sgen,omitempty"`
	RT    string `json:"rt,omitempty"`     // presented refresh token (a hash prefix)
	NewRT string `json:"new_rt,omitempty"` // the refresh token answered

	Seq      int64 `json:"seq,omitempty"`
	Pos      int64 `json:"pos,omitempty"`       // position read before the verdict or state
	PosAfter int64 `json:"pos_after,omitempty"` // position read after it
	Confirm  bool  `json:"confirm,omitempty"`
	InForce  bool  `json:"in_force,omitempty"`
	Ready    bool  `json:"ready,omitempty"`
	Final    bool  `json:"final,omitempty"`
	StaleMS  int64 `json:"stale_ms,omitempty"`
	SkewMS   int64 `json:"skew_ms,omitempty"`

	Detail string `json:"detail,omitempty"`
}
