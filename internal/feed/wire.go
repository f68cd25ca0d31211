package feed

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// Path is where the feed is served, relative to an authority's base URL.
const Path = "/v1/feed"

// ReportsPath is where a named follower streams its position reports,
// relative to an authority's base URL.
const ReportsPath = "/v1/feed/reports"

// Event types of the feed.
const (
	EventRevocations = "revocations" // entries, one per data line
	EventHeartbeat   = "heartbeat"
	EventReset       = "reset"
	EventAsk         = "ask"   // a confirmation waits: report once the position is applied
	EventNodes       = "nodes" // the URLs the cluster's nodes advertise
)

// The protocol's version, asked for with v=2 (or nothing).
const (
	versionParam = "v"
	version      = "2"
)

// Bounds of one revocations event. Small events cost little more per
// entry (about 30 bytes and one state update per event) and keep the work
// a cut stream loses, and each bite a client applies, small.
const (
	maxBatchEntries = 256
	maxBatchBytes   = 2 << 10
)

type heartbeatData struct {
	Head  int64  `json:"head"`
	Time  int64  `json:"time"`            // unix milliseconds
	Epoch string `json:"epoch,omitempty"` // the log's epoch
}

type resetData struct {
	Head int64 `json:"head"`
}

type askData struct {
	Position int64 `json:"position"`
}

// appendLine appends the data line that carries e in a revocations event:
//
//	data: <seq> <kind> <created_at> <expires_at> <sgen> <sid or sub>\n
//
// instants in Unix microseconds, created_at rounded down and expires_at up
// (the store keeps microseconds: nothing is rounded in practice, and an
// entry never covers less than it did). ok is false for an entry no line
// can carry: a kind other than session and subject, a session entry with a
// subject or a subject entry with a session, a key that is empty or holds
// a line end. The authority makes no such entry (subjects hold no control
// characters, session ids are its own).
func appendLine(dst []byte, e revocation.Entry) (out []byte, ok bool) {
	key, other := e.Session, e.Subject
	switch e.Kind {
	case revocation.KindSession:
	case revocation.KindSubject:
		key, other = e.Subject, e.Session
	default:
		return dst, false
	}
	if key == "" || other != "" || strings.ContainsAny(key, "\r\n") {
		return dst, false
	}
	expires := e.ExpiresAt.UnixMicro()
	if e.ExpiresAt.After(time.UnixMicro(expires)) {
		expires++
	}
	dst = append(dst, "data: "...)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, ' ')
	dst = append(dst, e.Kind...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, e.CreatedAt.UnixMicro(), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, expires, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, e.Generation, 10)
	dst = append(dst, ' ')
	dst = append(dst, key...)
	return append(dst, '\n'), true
}

// errLine is wrapped by the errors of parseLines.
var errLine = errors.New("feed: malformed revocations event")

// parseLines appends to dst the entries of a revocations event's data, one
// per line, without reflection and allocating only the keys' strings.
func parseLines(dst []revocation.Entry, data []byte) ([]revocation.Entry, error) {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		e, err := parseLine(line)
		if err != nil {
			return dst, err
		}
		dst = append(dst, e)
	}
	return dst, nil
}

func parseLine(line []byte) (revocation.Entry, error) {
	var f [5][]byte
	rest := line
	for i := range f {
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			return revocation.Entry{}, fmt.Errorf("%w: %d fields in a line, want 6", errLine, i+1)
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	var e revocation.Entry
	var ok [4]bool
	var created, expires int64
	e.Seq, ok[0] = atoi(f[0])
	created, ok[1] = atoi(f[2])
	expires, ok[2] = atoi(f[3])
	e.Generation, ok[3] = atoi(f[4])
	if ok != [4]bool{true, true, true, true} || len(rest) == 0 || bytes.IndexByte(rest, '\r') >= 0 {
		return revocation.Entry{}, fmt.Errorf("%w: bad number or key in a line", errLine)
	}
	e.CreatedAt, e.ExpiresAt = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC()
	switch string(f[1]) {
	case string(revocation.KindSession):
		e.Kind, e.Session = revocation.KindSession, string(rest)
	case string(revocation.KindSubject):
		e.Kind, e.Subject = revocation.KindSubject, string(rest)
	default:
		return revocation.Entry{}, fmt.Errorf("%w: unknown kind %q", errLine, f[1])
	}
	return e, nil
}

// atoi parses a decimal int64, optionally negative, with no other
// characters.
func atoi(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<63-1+uint64(btoi(neg)) {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
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

// randomToken returns 128 random bits, base64url: epochs, report tokens.
func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func appendReset(dst []byte, head int64) []byte {
	dst = append(dst, "event: reset\ndata: {\"head\":"...)
	dst = strconv.AppendInt(dst, head, 10)
	return append(dst, "}\n\n"...)
}

// appendAsk appends an ask for position pos.
func appendAsk(dst []byte, pos int64) []byte {
	dst = append(dst, "event: ask\ndata: {\"position\":"...)
	dst = strconv.AppendInt(dst, pos, 10)
	return append(dst, "}\n\n"...)
}
