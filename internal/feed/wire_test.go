package feed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

var lineT0 = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

func TestLineRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		e    revocation.Entry
	}{
		{"session", revocation.Entry{Seq: 1, Kind: revocation.KindSession, Session: "AAECAwQFBgcICQoLDA0ODw", CreatedAt: lineT0, ExpiresAt: lineT0.Add(time.Hour)}},
		{"subject", revocation.Entry{Seq: 1 << 62, Kind: revocation.KindSubject, Subject: "alice@example.com", Generation: 7, CreatedAt: lineT0, ExpiresAt: lineT0.Add(time.Hour)}},
		{"subject with spaces", revocation.Entry{Seq: 2, Kind: revocation.KindSubject, Subject: "  bob  smith ", Generation: 1, CreatedAt: lineT0, ExpiresAt: lineT0}},
		{"before 1970", revocation.Entry{Seq: 3, Kind: revocation.KindSession, Session: "x", CreatedAt: time.Unix(-5, 0).UTC(), ExpiresAt: time.Unix(-1, 0).UTC()}},
		{"unicode subject", revocation.Entry{Seq: 4, Kind: revocation.KindSubject, Subject: "ユーザー", Generation: 2, CreatedAt: lineT0, ExpiresAt: lineT0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, _, ok := appendLine(nil, tt.e)
			if !ok {
				t.Fatalf("appendLine(%+v) = not ok", tt.e)
			}
			data := strings.TrimSuffix(strings.TrimPrefix(string(line), "data: "), "\n")
			got, err := parseLines(nil, []byte(data))
			if err != nil || len(got) != 1 || got[0] != tt.e {
				t.Fatalf("parseLines(%q) = %+v, %v, want %+v", data, got, err, tt.e)
			}
		})
	}
}

// TestLineRefuses: entries no line can carry (the authority makes none).
func TestLineRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		e    revocation.Entry
	}{
		{"unknown kind", revocation.Entry{Seq: 1, Kind: "device", Session: "x", CreatedAt: lineT0, ExpiresAt: lineT0}},
		{"empty key", revocation.Entry{Seq: 1, Kind: revocation.KindSubject, CreatedAt: lineT0, ExpiresAt: lineT0}},
		{"newline in key", revocation.Entry{Seq: 1, Kind: revocation.KindSubject, Subject: "a\nb", CreatedAt: lineT0, ExpiresAt: lineT0}},
		{"carriage return in key", revocation.Entry{Seq: 1, Kind: revocation.KindSession, Session: "a\rb", CreatedAt: lineT0, ExpiresAt: lineT0}},
		{"session with a subject", revocation.Entry{Seq: 1, Kind: revocation.KindSession, Session: "s", Subject: "u", CreatedAt: lineT0, ExpiresAt: lineT0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if line, _, ok := appendLine([]byte("x"), tt.e); ok || string(line) != "x" {
				t.Errorf("appendLine(%+v) = %q, %v, want nothing appended and not ok", tt.e, line, ok)
			}
		})
	}
}

func TestParseLinesRejects(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		"1 session 2 3 0",                           // no key
		"1 session 2 3 0 ",                          // empty key
		"x session 2 3 0 k",                         // seq not a number
		"1 device 2 3 0 k",                          // unknown kind
		"1 session 2 3 - k",                         // a lone minus
		"1 session 2 3 +0 k",                        // a plus sign
		"99999999999999999999 session 2 3 0 k",      // overflows
		"1 session 2 3 0 k\n\n",                     // an empty line
		"+0 k",                                      // a continuation first
		"1 session 2 3 0 k\n+0",                     // a continuation without a key
		"1 session 2 3 0 k\n+0 ",                    // a continuation with an empty key
		"1 session 2 3 0 k\n+x k",                   // a continuation's sgen not a number
		"1 session 2 3 0 k\n+ 0 k",                  // a space before the sgen
		"9223372036854775807 subject 2 3 0 k\n+0 k", // a seq past the largest
	} {
		if got, err := parseLines(nil, []byte(data)); err == nil {
			t.Errorf("parseLines(%q) = %+v, nil, want an error", data, got)
		}
	}
}

func FuzzParseLines(f *testing.F) {
	f.Add([]byte("1 session 1700000000000000 1700000900000000 0 AAECAwQFBgcICQoLDA0ODw\n2 subject 1 2 3 alice"))
	f.Add([]byte("-9223372036854775808 subject -1 -2 -3  "))
	f.Add([]byte("5 subject 1 2 3 alice\n+4 bob\n+0 carol dan\n9 session 1 2 0 s\n+1 t"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := parseLines(nil, data)
		// A follower parses an event a chunk at a time into one scratch
		// slice (follower.revocations): a continuation first in its chunk
		// follows the last entry of the chunk before, which is gone.
		for _, limit := range []int{1, 2, 3} {
			got, gotErr := parseInChunks(data, limit)
			if !slices.Equal(got, es) || (gotErr == nil) != (err == nil) {
				t.Fatalf("parseLines(%q) = %+v, %v; in chunks of %d: %+v, %v", data, es, err, limit, got, gotErr)
			}
		}
		if err != nil {
			return
		}
		// What parses writes back to the same entries, as the hub sends
		// them: continuation lines where they fit, in one event if they
		// are in seq order.
		var out []byte
		var lines arena
		var b batcher
		for _, e := range es {
			f, ok := newFrame(e, &lines)
			if !ok {
				t.Fatalf("parsed %+v, which no line carries", e)
			}
			if b.n > 0 && e.Seq <= b.last {
				out = b.end(out)
			}
			out = b.add(out, f)
		}
		out = b.end(out)
		again, err := parseEvents(out)
		if err != nil || len(again) != len(es) {
			t.Fatalf("round trip of %q: %+v, %v", data, again, err)
		}
		for i := range es {
			if again[i] != es[i] {
				t.Fatalf("round trip of %q: entry %d = %+v, want %+v", data, i, again[i], es[i])
			}
		}
	})
}

// parseInChunks parses data as a follower does: limit entries at a time
// into one scratch slice, cleared after each chunk.
func parseInChunks(data []byte, limit int) ([]revocation.Entry, error) {
	p := newLineParser(data, false)
	var all, scratch []revocation.Entry
	for !p.done() {
		es, err := p.next(scratch[:0], limit)
		all = append(all, es...)
		clear(es)
		scratch = es
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// TestArenaLines: lines handed out by an arena are each entry's own line,
// whatever the chunk they fall in, and none can be appended to in place
// (which would write over the next entry's line); an entry no line can
// carry takes no room.
func TestArenaLines(t *testing.T) {
	t.Parallel()
	var a arena
	var es []revocation.Entry
	var lines [][]byte
	for i := range 2000 { // several chunks
		e := revocation.Entry{Seq: int64(i + 1), Kind: revocation.KindSubject, Subject: strings.Repeat("s", i%300+1),
			Generation: int64(i), CreatedAt: lineT0, ExpiresAt: lineT0.Add(time.Hour)}
		if i%7 == 0 {
			e.Subject = "bad\nkey"
		}
		line, _, ok := a.line(e)
		if want := i%7 != 0; ok != want {
			t.Fatalf("line(seq %d) ok = %v, want %v", e.Seq, ok, want)
		}
		if ok {
			es, lines = append(es, e), append(lines, line)
		}
	}
	for i, line := range lines {
		want, _, _ := appendLine(nil, es[i])
		if string(line) != string(want) {
			t.Fatalf("line of seq %d = %q, want %q", es[i].Seq, line, want)
		}
		if cap(line) != len(line) {
			t.Fatalf("line of seq %d has capacity %d past its %d bytes", es[i].Seq, cap(line), len(line))
		}
	}
}

// TestLineRoundsOutward: an instant finer than a microsecond (the store
// keeps none) is rounded so that the entry covers no less: created_at
// down, expires_at up.
func TestLineRoundsOutward(t *testing.T) {
	t.Parallel()
	e := revocation.Entry{Seq: 1, Kind: revocation.KindSession, Session: "s", CreatedAt: lineT0.Add(999), ExpiresAt: lineT0.Add(1)}
	line, _, ok := appendLine(nil, e)
	want := fmt.Sprintf("data: 1 session %d %d 0 s\n", lineT0.UnixMicro(), lineT0.UnixMicro()+1)
	if !ok || string(line) != want {
		t.Fatalf("appendLine(%+v) = %q, %v, want %q", e, line, ok, want)
	}
}

// parseEvents parses the revocations events of a hub's output, in order.
func parseEvents(out []byte) ([]revocation.Entry, error) {
	dec := NewDecoder(bytes.NewReader(out))
	var es []revocation.Entry
	for {
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return es, nil
		}
		if err != nil {
			return es, err
		}
		if ev.Type != EventRevocations {
			return es, fmt.Errorf("event %q, want %q", ev.Type, EventRevocations)
		}
		if es, err = parseLines(es, ev.Data); err != nil {
			return es, err
		}
	}
}

// TestBatcherContinues: an entry that follows the one before it in its
// event (seq one higher, same kind, created_at and expires_at) goes as a
// continuation line; any other, and the first of every event, as a full
// line; and the events parse back to the entries.
func TestBatcherContinues(t *testing.T) {
	t.Parallel()
	exp := lineT0.Add(time.Hour)
	sub := func(seq, gen int64, s string, exp time.Time) revocation.Entry {
		return revocation.Entry{Seq: seq, Kind: revocation.KindSubject, Subject: s, Generation: gen, CreatedAt: lineT0, ExpiresAt: exp}
	}
	es := []revocation.Entry{
		sub(9, 1, "alice", exp),
		sub(10, 3, "bob smith", exp), // the seq gains a digit
		sub(11, 1, "carol", exp.Add(time.Microsecond)),
		sub(13, 1, "dan", exp.Add(time.Microsecond)), // a gap
		{Seq: 14, Kind: revocation.KindSession, Session: "s1", CreatedAt: lineT0, ExpiresAt: exp.Add(time.Microsecond)},
		{Seq: 15, Kind: revocation.KindSession, Session: "s2", CreatedAt: lineT0, ExpiresAt: exp.Add(time.Microsecond)},
	}
	var lines arena
	var b batcher
	var out []byte
	for _, e := range es {
		f, ok := newFrame(e, &lines)
		if !ok {
			t.Fatalf("newFrame(%+v) = not ok", e)
		}
		out = b.add(out, f)
	}
	out = b.end(out)
	c, x := lineT0.UnixMicro(), exp.UnixMicro()
	want := fmt.Sprintf("id: 15\nevent: revocations\n"+
		"data: 9 subject %[1]d %[2]d 1 alice\ndata: +3 bob smith\n"+
		"data: 11 subject %[1]d %[3]d 1 carol\n"+
		"data: 13 subject %[1]d %[3]d 1 dan\n"+
		"data: 14 session %[1]d %[3]d 0 s1\ndata: +0 s2\n\n", c, x, x+1)
	if string(out) != want {
		t.Fatalf("batcher wrote\n%s\nwant\n%s", out, want)
	}
	got, err := parseEvents(out)
	if err != nil || len(got) != len(es) {
		t.Fatalf("parseEvents = %+v, %v, want %d entries", got, err, len(es))
	}
	for i := range es {
		if got[i] != es[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], es[i])
		}
	}
}

// TestBatcherBounds: a bulk revocation's entries go in events of at most
// maxBatchEntries and about maxBatchBytes, each beginning with a full line.
func TestBatcherBounds(t *testing.T) {
	t.Parallel()
	var lines arena
	var b batcher
	var out []byte
	const n = 10_000
	for i := range n {
		e := revocation.Entry{Seq: int64(i + 1), Kind: revocation.KindSubject, Subject: fmt.Sprint("fanout-bulk-", i), Generation: 1,
			CreatedAt: lineT0, ExpiresAt: lineT0.Add(time.Hour)}
		f, _ := newFrame(e, &lines)
		out = b.add(out, f)
	}
	out = b.end(out)
	dec := NewDecoder(bytes.NewReader(out))
	total, events := 0, 0
	for {
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		events++
		es, err := parseLines(nil, ev.Data)
		if err != nil || len(es) > maxBatchEntries || len(ev.Data) > maxBatchBytes+100 {
			t.Fatalf("event %d: %d entries, %d bytes, %v; want at most %d and about %d", events, len(es), len(ev.Data), err, maxBatchEntries, maxBatchBytes)
		}
		if ev.ID != fmt.Sprint(es[len(es)-1].Seq) || bytes.HasPrefix(ev.Data, []byte("+")) {
			t.Fatalf("event %d: id %s, data starting %.20q; want the last seq, a full line first", events, ev.ID, ev.Data)
		}
		total += len(es)
	}
	if total != n || events > 2*n*30/maxBatchBytes {
		t.Fatalf("%d entries in %d events, want %d in about %d", total, events, n, n*30/maxBatchBytes)
	}
}

// TestParseAsk pins that the ask's quick path reads what the JSON decoder
// reads, and refuses what it refuses.
func TestParseAsk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data string
		want       int64
		wantErr    bool
	}{
		{name: "as the node writes it", data: `{"position":42}`, want: 42},
		{name: "zero", data: `{"position":0}`, want: 0},
		{name: "largest", data: `{"position":9223372036854775807}`, want: 1<<63 - 1},
		{name: "spaces", data: `{ "position": 7 }`, want: 7},
		{name: "another field", data: `{"position":7,"later":true}`, want: 7},
		{name: "leading zero", data: `{"position":07}`, wantErr: true},
		{name: "too large", data: `{"position":9223372036854775808}`, wantErr: true},
		{name: "not a number", data: `{"position":"7"}`, wantErr: true},
		{name: "cut short", data: `{"position":7`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseAsk([]byte(tt.data))
			if (err != nil) != tt.wantErr || err == nil && a.Position != tt.want {
				t.Errorf("parseAsk(%q) = %d, %v; want %d, error %v", tt.data, a.Position, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestFields3 pins that report and answer lines split as bytes.Fields
// splits them.
func TestFields3(t *testing.T) {
	t.Parallel()
	for _, line := range []string{"1 2 1", "  1\t2  0 ", "1 2", "1 2 1 4", "", "   ", "0 12345678901234567890 1",
		"1\u00a02 1", "1 2\u00a0x 1", "\x00 \x01 \x02", "a\vb\fc"} {
		f, three := fields3([]byte(line))
		want := bytes.Fields([]byte(line))
		if three != (len(want) == 3) || three && (!bytes.Equal(f[0], want[0]) || !bytes.Equal(f[1], want[1]) || !bytes.Equal(f[2], want[2])) {
			t.Errorf("fields3(%q) = %q, %v; want %q", line, f, three, want)
		}
	}
}
