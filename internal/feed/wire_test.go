package feed

import (
	"fmt"
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
			line, ok := appendLine(nil, tt.e)
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
			if line, ok := appendLine([]byte("x"), tt.e); ok || string(line) != "x" {
				t.Errorf("appendLine(%+v) = %q, %v, want nothing appended and not ok", tt.e, line, ok)
			}
		})
	}
}

func TestParseLinesRejects(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		"1 session 2 3 0",                      // no key
		"1 session 2 3 0 ",                     // empty key
		"x session 2 3 0 k",                    // seq not a number
		"1 device 2 3 0 k",                     // unknown kind
		"1 session 2 3 - k",                    // a lone minus
		"1 session 2 3 +0 k",                   // a plus sign
		"99999999999999999999 session 2 3 0 k", // overflows
		"1 session 2 3 0 k\n\n",                // an empty line
	} {
		if got, err := parseLines(nil, []byte(data)); err == nil {
			t.Errorf("parseLines(%q) = %+v, nil, want an error", data, got)
		}
	}
}

func FuzzParseLines(f *testing.F) {
	f.Add([]byte("1 session 1700000000000000 1700000900000000 0 AAECAwQFBgcICQoLDA0ODw\n2 subject 1 2 3 alice"))
	f.Add([]byte("-9223372036854775808 subject -1 -2 -3  "))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := parseLines(nil, data)
		if err != nil {
			return
		}
		// What parses writes back to the same entries.
		var out []byte
		for _, e := range es {
			line, ok := appendLine(nil, e)
			if !ok {
				t.Fatalf("parsed %+v, which no line carries", e)
			}
			out = append(out, line...)
		}
		again, err := parseLines(nil, []byte(strings.ReplaceAll(strings.TrimSuffix(string(out), "\n"), "data: ", "")))
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
		line, ok := a.line(e)
		if want := i%7 != 0; ok != want {
			t.Fatalf("line(seq %d) ok = %v, want %v", e.Seq, ok, want)
		}
		if ok {
			es, lines = append(es, e), append(lines, line)
		}
	}
	for i, line := range lines {
		want, _ := appendLine(nil, es[i])
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
	line, ok := appendLine(nil, e)
	want := fmt.Sprintf("data: 1 session %d %d 0 s\n", lineT0.UnixMicro(), lineT0.UnixMicro()+1)
	if !ok || string(line) != want {
		t.Fatalf("appendLine(%+v) = %q, %v, want %q", e, line, ok, want)
	}
}
