package statuslist

import (
	"bufio"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// vector is one test vector of draft-ietf-oauth-status-list-21 as kept in
// testdata (see testdata/README.md).
type vector struct {
	file     string
	bits     int
	size     int
	statuses map[int]byte
	bytes    []byte // the uncompressed array, where the draft prints it
	lst      string
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test vectors: %v", err)
	}
	var vs []vector
	for _, f := range files {
		vs = append(vs, loadVector(t, f))
	}
	return vs
}

func loadVector(t *testing.T, path string) vector {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := vector{file: filepath.Base(path), statuses: map[int]byte{}}
	var lst strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, _ := strings.Cut(line, " ")
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case key == "bits":
			v.bits = atoi(t, val)
		case key == "size":
			v.size = atoi(t, val)
		case key == "bytes":
			if v.bytes, err = hex.DecodeString(val); err != nil {
				t.Fatalf("%s: bytes: %v", path, err)
			}
		case key == "lst":
			lst.WriteString(val)
		case strings.HasPrefix(line, "status["):
			idx, bin, ok := strings.Cut(strings.TrimPrefix(line, "status["), "]")
			bin = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(bin), "="))
			n, err := strconv.ParseUint(strings.TrimPrefix(bin, "0b"), 2, 8)
			if !ok || err != nil {
				t.Fatalf("%s: bad line %q", path, line)
			}
			v.statuses[atoi(t, idx)] = byte(n)
		default:
			t.Fatalf("%s: bad line %q", path, line)
		}
	}
	v.lst = lst.String()
	return v
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("atoi(%q): %v", s, err)
	}
	return n
}

// TestDraftVectorsDecode decodes the draft's own lst strings and compares
// every entry with the statuses the draft lists (all others are VALID).
func TestDraftVectorsDecode(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.file, func(t *testing.T) {
			l, err := Decode(v.bits, v.lst)
			if err != nil {
				t.Fatalf("Decode(%d, draft lst) = %v", v.bits, err)
			}
			if l.Size() < v.size {
				t.Fatalf("Size() = %d, want at least %d", l.Size(), v.size)
			}
			if v.bytes != nil && string(l.Bytes()) != string(v.bytes) {
				t.Errorf("Bytes() = %x, want %x", l.Bytes(), v.bytes)
			}
			for idx := range v.size {
				got, err := l.Get(idx)
				if want := v.statuses[idx]; err != nil || got != want {
					t.Fatalf("Get(%d) = %#b, %v, want %#b", idx, got, err, want)
				}
			}
		})
	}
}

// TestDraftVectorsEncode builds each list with Set, encodes it with Go's
// zlib, and checks that decoding gives the draft's byte array back. The
// compressed bytes differ from the draft's; the bits may not.
func TestDraftVectorsEncode(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.file, func(t *testing.T) {
			l, err := New(v.bits, v.size)
			if err != nil {
				t.Fatalf("New(%d, %d) = %v", v.bits, v.size, err)
			}
			for idx, s := range v.statuses {
				if err := l.Set(idx, s); err != nil {
					t.Fatalf("Set(%d, %#b) = %v", idx, s, err)
				}
			}
			draft, err := Decode(v.bits, v.lst)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := Decode(v.bits, l.Encode())
			if err != nil {
				t.Fatalf("Decode(Encode()) = %v", err)
			}
			if string(ours.Bytes()) != string(draft.Bytes()[:len(ours.Bytes())]) {
				t.Errorf("our encoding decodes to other bytes than the draft's")
			}
		})
	}
}

func TestSetGetBounds(t *testing.T) {
	l, err := New(2, 16)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		idx    int
		status byte
		want   error
	}{
		{"first", 0, 3, nil},
		{"last", 15, 2, nil},
		{"negative", -1, 1, ErrIndex},
		{"past the end", 16, 1, ErrIndex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := l.Set(tt.idx, tt.status); !errors.Is(err, tt.want) {
				t.Fatalf("Set(%d) = %v, want %v", tt.idx, err, tt.want)
			}
			if tt.want != nil {
				return
			}
			if got, err := l.Get(tt.idx); err != nil || got != tt.status {
				t.Errorf("Get(%d) = %d, %v, want %d", tt.idx, got, err, tt.status)
			}
		})
	}
	if err := l.Set(1, 4); err == nil {
		t.Error("Set(1, 4) with 2 bits = nil, want an error")
	}
	if got, _ := l.Get(1); got != 0 {
		t.Errorf("Get(1) = %d after a refused Set, want 0 (neighbours untouched)", got)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, c := range []struct{ bits, size int }{{3, 8}, {0, 8}, {1, 0}, {1, 7}, {2, 3}} {
		if _, err := New(c.bits, c.size); err == nil {
			t.Errorf("New(%d, %d) = nil error, want a refusal", c.bits, c.size)
		}
	}
}

func TestDecodeRefusesHostileInput(t *testing.T) {
	bomb, _ := New(8, MaxDecoded+8)
	tests := []struct{ name, lst string }{
		{"not base64url", "eNr+/w=="},
		{"not zlib", "AAAA"},
		{"truncated", "eNrbuRgAAhcB"},
		{"inflates too far", bomb.Encode()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(1, tt.lst); err == nil {
				t.Errorf("Decode(%q) = nil error", tt.lst[:min(len(tt.lst), 20)])
			}
		})
	}
}
