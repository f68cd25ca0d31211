package revocation

import "time"

// Kind says what a revocation entry covers.
type Kind string

const (
	// KindSession revokes every token of one session (sign out one device).
	KindSession Kind = "session"
	// KindSubject revokes every access token of a subject whose generation
	// (the "sgen" claim) is lower than Entry.Generation: all tokens issued
	// before the cutoff, none issued after it.
	KindSubject Kind = "subject"
)

// Entry is one row of the revocation log as verifiers see it.
//
// Seq is strictly increasing across the whole log; a verifier that has
// applied every entry up to n catches up by asking for entries with seq > n.
// ExpiresAt is the instant after which no token the entry covers can still be
// valid, so the entry may be forgotten.
type Entry struct {
	Seq        int64     `json:"seq"`
	Kind       Kind      `json:"kind"`
	Session    string    `json:"sid,omitempty"`
	Subject    string    `json:"sub,omitempty"`
	Generation int64     `json:"sgen,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}
