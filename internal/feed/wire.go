package feed

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// Path is where the feed is served, relative to an authority's base URL.
const Path = "/v1/feed"

// Event types of the feed.
const (
	EventRevoke    = "revoke"
	EventHeartbeat = "heartbeat"
	EventReset     = "reset"
)

type heartbeatData struct {
	Head  int64  `json:"head"`
	Time  int64  `json:"time"`            // unix milliseconds
	Epoch string `json:"epoch,omitempty"` // the log's epoch; absent from older servers
}

type resetData struct {
	Head int64 `json:"head"`
}

// appendRevoke appends the revoke event of e. The JSON encoding of an Entry
// never contains a newline, so it fits on one data line.
func appendRevoke(dst []byte, e revocation.Entry) ([]byte, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return dst, fmt.Errorf("feed: encode entry %d: %w", e.Seq, err)
	}
	dst = append(dst, "id: "...)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, "\nevent: revoke\ndata: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...), nil
}

// appendHeartbeat appends a heartbeat; epoch is the epoch as a JSON string.
func appendHeartbeat(dst []byte, pos int64, now time.Time, epoch []byte) []byte {
	dst = append(dst, "id: "...)
	dst = strconv.AppendInt(dst, pos, 10)
	dst = append(dst, "\nevent: heartbeat\ndata: {\"head\":"...)
	dst = strconv.AppendInt(dst, pos, 10)
	dst = append(dst, ",\"time\":"...)
	dst = strconv.AppendInt(dst, now.UnixMilli(), 10)
	dst = append(dst, ",\"epoch\":"...)
	dst = append(dst, epoch...)
	return append(dst, "}\n\n"...)
}

// randomEpoch returns 128 random bits, base64url.
func randomEpoch() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func appendReset(dst []byte, head int64) []byte {
	dst = append(dst, "event: reset\ndata: {\"head\":"...)
	dst = strconv.AppendInt(dst, head, 10)
	return append(dst, "}\n\n"...)
}
