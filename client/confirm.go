package client

import (
	"context"
	"net/url"
	"time"
)

// Confirmation says whether a revocation is in force on every verifier:
// each has applied it, or refuses every token. It answers the *Confirm
// calls, which return no error when the wait ran out first (the authority
// answers 202: the revocation is recorded either way).
type Confirmation struct {
	InForce   bool              `json:"in_force"`
	Confirmed int               `json:"confirmed"`
	Pending   []PendingVerifier `json:"pending"`
	WaitedMS  int64             `json:"waited_ms"`
}

// PendingVerifier is a verifier that had not applied the revocation when
// the wait ended.
type PendingVerifier struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Host      string    `json:"host"`
	Node      string    `json:"node"`
	Position  int64     `json:"position"`
	LastHeard time.Time `json:"last_heard"`
}

func confirmQuery(wait time.Duration) string {
	return "?" + url.Values{"confirm": {wait.String()}}.Encode()
}

// RevokeSessionConfirm signs one session out and waits up to wait (capped
// by the authority) for the revocation to be in force on every verifier.
func (c *Client) RevokeSessionConfirm(ctx context.Context, sid, reason string, wait time.Duration) (Revocation, error) {
	var r Revocation
	err := c.call(ctx, "POST", "/v1/sessions/"+url.PathEscape(sid)+"/revoke"+confirmQuery(wait), map[string]string{"reason": reason}, &r)
	return r, err
}

// RevokeSubjectConfirm is RevokeSubject, then waits up to wait for the
// revocation to be in force on every verifier.
func (c *Client) RevokeSubjectConfirm(ctx context.Context, subject, scope, reason string, claims map[string]any, wait time.Duration) (Revocation, error) {
	body := map[string]any{"scope": scope, "reason": reason}
	if claims != nil {
		body["claims"] = claims
	}
	var r Revocation
	err := c.call(ctx, "POST", "/v1/subjects/"+url.PathEscape(subject)+"/revoke"+confirmQuery(wait), body, &r)
	return r, err
}

// Verifier is one verifier following the cluster's feed.
type Verifier struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Host         string    `json:"host"`
	Version      string    `json:"version"`
	Node         string    `json:"node"`
	NodeURL      string    `json:"node_url"`
	Position     int64     `json:"position"`
	LagEntries   int64     `json:"lag_entries"`
	LagMS        int64     `json:"lag_ms"`
	LastHeard    time.Time `json:"last_heard"`
	StaleAfterMS int64     `json:"stale_after_ms"`
	State        string    `json:"state"` // current, behind or stale
}

// Verifiers is the answer of GET /v1/verifiers.
type Verifiers struct {
	Head      int64      `json:"head"`
	Verifiers []Verifier `json:"verifiers"`
	Nodes     []struct {
		ID        string    `json:"id"`
		URL       string    `json:"url"`
		Head      int64     `json:"head"`
		Safe      int64     `json:"safe"`
		Followers int       `json:"followers"`
		UpdatedAt time.Time `json:"updated_at"`
	} `json:"nodes"`
}

// Verifiers lists the live verifiers of the cluster.
func (c *Client) Verifiers(ctx context.Context) (Verifiers, error) {
	var out Verifiers
	err := c.call(ctx, "GET", "/v1/verifiers", nil, &out)
	return out, err
}
