package client

import (
	"context"
	"net/url"
	"time"
)

// Confirmation says whether a revocation is in force on every verifier:
// each has applied it, or refuses every token. It answers a revocation
// with Confirm set, which returns no error when the wait ran out first
// (the authority answers 202: the revocation is recorded either way).
type Confirmation struct {
	InForce   bool `json:"in_force"`
	Confirmed int  `json:"confirmed"`
	// Pending names the verifiers it is not yet in force on, at most 100
	// of them; PendingCount says how many there are in all.
	Pending      []PendingVerifier `json:"pending"`
	PendingCount int               `json:"pending_count"`
	WaitedMS     int64             `json:"waited_ms"`
}

// PendingVerifier is a verifier that had not applied the revocation when
// the wait ended.
type PendingVerifier struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Host      string    `json:"host,omitempty"`
	Node      string    `json:"node"`
	Position  int64     `json:"position"`
	LastHeard time.Time `json:"last_heard"`
}

// confirmQuery is the ?confirm= of a revocation, or "" for none.
func confirmQuery(wait time.Duration) string {
	if wait <= 0 {
		return ""
	}
	return "?" + url.Values{"confirm": {wait.String()}}.Encode()
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
	Nodes     []Node     `json:"nodes"`
}

// Node is one authority node of the cluster, as it last recorded itself.
type Node struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Head      int64     `json:"head"`
	Safe      int64     `json:"safe"`
	Followers int       `json:"followers"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Verifiers lists the live verifiers of the cluster (GET /v1/verifiers,
// admin or gate key).
func (c *Client) Verifiers(ctx context.Context) (Verifiers, error) {
	var out Verifiers
	err := c.call(ctx, "GET", "/v1/verifiers", nil, &out)
	return out, err
}
