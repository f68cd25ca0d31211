package inforce

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// message is what nodes broadcast to each other: either a want (a node
// waits for Want to be in force) or a node's record.
type message struct {
	// Epoch scopes messages to one cluster: Postgres delivers NOTIFY to
	// every listener of the database, whatever schema it uses, so
	// clusters sharing a database hear each other.
	Epoch string       `json:"epoch"`
	From  string       `json:"from"`
	Want  int64        `json:"want,omitempty"`
	Node  *nodeMessage `json:"node,omitempty"`
}

// nodeMessage is a store.NodeRecord on the wire (times in Unix
// microseconds, like the store).
type nodeMessage struct {
	ID        string `json:"id"`
	URL       string `json:"url"`
	Advertise string `json:"advertise,omitempty"`
	Stopped   bool   `json:"stopped,omitempty"`
	Safe      int64  `json:"safe"`
	Head      int64  `json:"head"`
	Followers int    `json:"followers"`
	Version   int64  `json:"version"`
	Updated   int64  `json:"updated"`
	Expires   int64  `json:"expires"`
	// Pending, when the node is behind what another node asked for
	// (Want), lists its followers not yet safe there: all of them when
	// Complete, else too many to say.
	Want     int64     `json:"want,omitempty"`
	Pending  []Pending `json:"pending,omitempty"`
	Complete bool      `json:"complete,omitempty"`
}

func toMessage(n store.NodeRecord) *nodeMessage {
	return &nodeMessage{ID: n.ID, URL: n.URL, Advertise: n.Advertise, Stopped: n.Stopped, Safe: n.Safe, Head: n.Head, Followers: n.Followers,
		Version: n.Version, Updated: n.UpdatedAt.UnixMicro(), Expires: n.ExpiresAt.UnixMicro()}
}

func (m *nodeMessage) record() store.NodeRecord {
	return store.NodeRecord{ID: m.ID, URL: m.URL, Advertise: m.Advertise, Stopped: m.Stopped, Safe: m.Safe, Head: m.Head, Followers: m.Followers,
		Version: m.Version, UpdatedAt: time.UnixMicro(m.Updated).UTC(), ExpiresAt: time.UnixMicro(m.Expires).UTC()}
}

func encode(m message) (string, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if len(b) > store.MaxBroadcast {
		return "", fmt.Errorf("inforce: message of %d bytes", len(b))
	}
	return string(b), nil
}

func decode(s string) (message, error) {
	var m message
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return m, fmt.Errorf("inforce: malformed message: %w", err)
	}
	if m.Node != nil && m.Node.ID == "" {
		return m, fmt.Errorf("inforce: node message without an id")
	}
	return m, nil
}
