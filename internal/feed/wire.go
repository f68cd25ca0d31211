package feed

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

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

// Bounds of one revocations event. An event costs a follower one state
// update, and its entries go to the set together (revocation.ApplyMany):
// a bulk revocation's thousands of entries go in a few events of about a
// thousand, which a set records in a fraction of the time it takes one by
// one. The bounds keep each bite a follower applies (a few hundred
// microseconds), and the work a cut stream loses, small; and every event
// well below the 64 KiB a follower may refuse (MaxEventSize).
const (
	maxBatchEntries = 2048
	maxBatchBytes   = 32 << 10
)

// A continuation line carries an entry that follows the line before it in
// its event: seq one higher, and the same kind, created_at and expires_at,
// as the entries of a bulk revocation do. It says only what differs:
//
//	data: +<sgen> <key>\n
//
// a third of a full line's bytes for a typical subject.
const contPrefix = "data: +"

// headField starts the optional field of a revocations event that gives
// the log's head when the node read the event's entries, if beyond the
// event's last: the entries up to it follow (see Event.Head).
const headField = "head: "

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

// parseAsk reads an ask event's data. The node writes it as
// {"position":N}, which is read without the JSON decoder (every follower
// reads one per confirmation); anything else a node may send, such as
// more fields or spaces, goes through the decoder.
func parseAsk(data []byte) (askData, error) {
	const prefix = `{"position":`
	if digits, ok := bytes.CutPrefix(data, []byte(prefix)); ok && len(digits) > 1 && digits[len(digits)-1] == '}' {
		digits = digits[:len(digits)-1]
		// What JSON takes as this number: no sign, no leading zero.
		if n, ok := atoi(digits); ok && digits[0] != '-' && (digits[0] != '0' || len(digits) == 1) {
			return askData{Position: n}, nil
		}
	}
	var a askData
	err := json.Unmarshal(data, &a)
	return a, err
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
//
// tail is where the line's "<sgen> <key>\n" begins, relative to its start:
// a continuation line (contPrefix) is made of that tail.
func appendLine(dst []byte, e revocation.Entry) (out []byte, tail int, ok bool) {
	key, other := e.Session, e.Subject
	switch e.Kind {
	case revocation.KindSession:
	case revocation.KindSubject:
		key, other = e.Subject, e.Session
	default:
		return dst, 0, false
	}
	if key == "" || other != "" || strings.ContainsAny(key, "\r\n") {
		return dst, 0, false
	}
	expires := e.ExpiresAt.UnixMicro()
	if e.ExpiresAt.After(time.UnixMicro(expires)) {
		expires++
	}
	start := len(dst)
	dst = append(dst, "data: "...)
	dst = strconv.AppendInt(dst, e.Seq, 10)
	dst = append(dst, ' ')
	dst = append(dst, e.Kind...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, e.CreatedAt.UnixMicro(), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, expires, 10)
	dst = append(dst, ' ')
	tail = len(dst) - start
	dst = strconv.AppendInt(dst, e.Generation, 10)
	dst = append(dst, ' ')
	dst = append(dst, key...)
	return append(dst, '\n'), tail, true
}

// errLine is wrapped by the errors of parseLines.
var errLine = errors.New("feed: malformed revocations event")

// parseLines appends to dst the entries of a revocations event's data, one
// per line, full or continuation.
func parseLines(dst []revocation.Entry, data []byte) ([]revocation.Entry, error) {
	p := newLineParser(data, false)
	for !p.done() {
		var err error
		if dst, err = p.next(dst, len(data)); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// lineParser reads the entries of a revocations event's data a few at a
// time, without reflection. The keys are cut from one string holding the
// whole event: an allocation per event, not per entry (a consumer that
// keeps a key keeps the event's text, up to 64 KiB, alive with it; the
// revocation set keeps hashes, or a copy). A shared parser's string is the
// data's bytes themselves, not a copy: no allocation at all, but its keys
// are only valid while the data is unchanged (see Client.ApplyMany).
type lineParser struct {
	text string
	prev revocation.Entry // the last entry parsed, which a continuation follows (none yet: no Kind)
}

func newLineParser(data []byte, shared bool) *lineParser {
	if shared {
		return &lineParser{text: unsafe.String(unsafe.SliceData(data), len(data))}
	}
	return &lineParser{text: string(data)}
}

func (p *lineParser) done() bool { return len(p.text) == 0 }

// next appends to dst the next entries, at most limit of them.
func (p *lineParser) next(dst []revocation.Entry, limit int) ([]revocation.Entry, error) {
	// An entry is over 100 bytes: a continuation is written once, in
	// place, following the entry before it where that one is, and only
	// the last is kept for the next call.
	prev := &p.prev
	defer func() {
		if prev != &p.prev {
			p.prev = *prev
		}
	}()
	for ; limit > 0 && len(p.text) > 0; limit-- {
		line := p.text
		if i := strings.IndexByte(p.text, '\n'); i >= 0 {
			line, p.text = p.text[:i], p.text[i+1:]
		} else {
			p.text = ""
		}
		if len(line) > 0 && line[0] == '+' {
			if prev.Kind == "" {
				return dst, fmt.Errorf("%w: a continuation line first in its event", errLine)
			}
			dst = append(dst, revocation.Entry{})
			if err := parseContinuation(&dst[len(dst)-1], line[1:], prev); err != nil {
				return dst[:len(dst)-1], err
			}
		} else {
			e, err := parseLine(line)
			if err != nil {
				return dst, err
			}
			dst = append(dst, e)
		}
		prev = &dst[len(dst)-1]
	}
	return dst, nil
}

// parseContinuation parses into e "<sgen> <key>", the rest of a
// continuation line that follows prev's.
func parseContinuation(e *revocation.Entry, rest string, prev *revocation.Entry) error {
	j := strings.IndexByte(rest, ' ')
	if j < 0 {
		return fmt.Errorf("%w: a continuation line without a key", errLine)
	}
	gen, ok := atoi(rest[:j])
	key := rest[j+1:]
	if !ok || len(key) == 0 || strings.IndexByte(key, '\r') >= 0 || prev.Seq == 1<<63-1 {
		return fmt.Errorf("%w: bad number or key in a continuation line", errLine)
	}
	e.Seq, e.Kind, e.Generation, e.CreatedAt, e.ExpiresAt = prev.Seq+1, prev.Kind, gen, prev.CreatedAt, prev.ExpiresAt
	if e.Kind == revocation.KindSession {
		e.Session = key
	} else {
		e.Subject = key
	}
	return nil
}

func parseLine(line string) (revocation.Entry, error) {
	var f [5]string
	rest := line
	for i := range f {
		j := strings.IndexByte(rest, ' ')
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
	if ok != [4]bool{true, true, true, true} || len(rest) == 0 || strings.IndexByte(rest, '\r') >= 0 {
		return revocation.Entry{}, fmt.Errorf("%w: bad number or key in a line", errLine)
	}
	e.CreatedAt, e.ExpiresAt = time.UnixMicro(created).UTC(), time.UnixMicro(expires).UTC()
	switch f[1] {
	case string(revocation.KindSession):
		e.Kind, e.Session = revocation.KindSession, rest
	case string(revocation.KindSubject):
		e.Kind, e.Subject = revocation.KindSubject, rest
	default:
		return revocation.Entry{}, fmt.Errorf("%w: unknown kind %q", errLine, f[1])
	}
	return e, nil
}

// atoi parses a decimal int64, optionally negative, with no other
// characters.
func atoi[T string | []byte](b T) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(b); i++ {
		c := b[i]
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
