package revocation

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// sidN returns a session id in tegata's format, distinct for every n.
func sidN(n uint64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], n*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint64(b[8:], n)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func session(seq int64, sid string, exp time.Time) Entry {
	return Entry{Seq: seq, Kind: KindSession, Session: sid, CreatedAt: t0, ExpiresAt: exp}
}

func subject(seq int64, sub string, gen int64, exp time.Time) Entry {
	return Entry{Seq: seq, Kind: KindSubject, Subject: sub, Generation: gen, CreatedAt: t0, ExpiresAt: exp}
}

type lookup struct {
	sid, sub string
	gen      int64
	wantKind Kind
	wantOK   bool
}

func TestApplyRevoked(t *testing.T) {
	exp := t0.Add(time.Hour)
	a, b := sidN(1), sidN(2)
	tests := []struct {
		name    string
		entries []Entry
		lookups []lookup
	}{
		{
			name:    "session revoked, other session not",
			entries: []Entry{session(1, a, exp)},
			lookups: []lookup{
				{sid: a, sub: "alice", gen: 9, wantKind: KindSession, wantOK: true},
				{sid: b, sub: "alice", gen: 9},
				{sid: "", sub: "alice", gen: 0},
			},
		},
		{
			name:    "non-canonical session ids are exact strings",
			entries: []Entry{session(1, "short", exp), session(2, a[:21]+"B", exp)},
			lookups: []lookup{
				{sid: "short", wantKind: KindSession, wantOK: true},
				{sid: "shor"},
				{sid: a[:21] + "B", wantKind: KindSession, wantOK: true},
				{sid: a}, // decodes to the same leading bits, but is another id
			},
		},
		{
			name:    "subject cutoff is exact",
			entries: []Entry{subject(1, "alice", 5, exp)},
			lookups: []lookup{
				{sub: "alice", gen: 0, wantKind: KindSubject, wantOK: true},
				{sub: "alice", gen: 4, wantKind: KindSubject, wantOK: true},
				{sub: "alice", gen: 5},
				{sub: "alice", gen: 6},
				{sub: "bob", gen: 0},
				{sid: a, sub: "", gen: 0},
			},
		},
		{
			name:    "later entry with lower generation does not lower the cutoff",
			entries: []Entry{subject(1, "alice", 5, exp), subject(2, "alice", 3, exp)},
			lookups: []lookup{
				{sub: "alice", gen: 4, wantKind: KindSubject, wantOK: true},
				{sub: "alice", gen: 5},
			},
		},
		{
			name:    "higher generation raises the cutoff",
			entries: []Entry{subject(1, "alice", 3, exp), subject(2, "alice", 7, exp)},
			lookups: []lookup{
				{sub: "alice", gen: 6, wantKind: KindSubject, wantOK: true},
				{sub: "alice", gen: 7},
			},
		},
		{
			name:    "session wins over subject",
			entries: []Entry{session(1, a, exp), subject(2, "alice", 5, exp)},
			lookups: []lookup{
				{sid: a, sub: "alice", gen: 1, wantKind: KindSession, wantOK: true},
				{sid: b, sub: "alice", gen: 1, wantKind: KindSubject, wantOK: true},
				{sid: b, sub: "alice", gen: 5},
			},
		},
		{
			name:    "already expired entries are still stored",
			entries: []Entry{session(1, a, time.Time{}), subject(2, "alice", 2, t0.Add(-time.Hour))},
			lookups: []lookup{
				{sid: a, wantKind: KindSession, wantOK: true},
				{sub: "alice", gen: 1, wantKind: KindSubject, wantOK: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSet(0)
			var early []Key
			for _, l := range tt.lookups {
				early = append(early, s.Key(l.sid, l.sub))
			}
			for _, e := range tt.entries {
				if err := s.Apply(e); err != nil {
					t.Fatalf("Apply(%+v) = %v, want nil", e, err)
				}
			}
			checkLookups(t, s, tt.lookups, early...)
		})
	}
}

// checkLookups asks both Revoked and RevokedKey (with a key prepared before
// the entries went in, as a verifier's cache holds it, and one after).
func checkLookups(t *testing.T, s *Set, lookups []lookup, early ...Key) {
	t.Helper()
	for i, l := range lookups {
		kind, ok := s.Revoked(l.sid, l.sub, l.gen)
		if kind != l.wantKind || ok != l.wantOK {
			t.Errorf("Revoked(%q, %q, %d) = %q, %v, want %q, %v", l.sid, l.sub, l.gen, kind, ok, l.wantKind, l.wantOK)
		}
		keys := []Key{s.Key(l.sid, l.sub)}
		if i < len(early) {
			keys = append(keys, early[i])
		}
		for _, k := range keys {
			if kind, ok := s.RevokedKey(&k, l.gen); kind != l.wantKind || ok != l.wantOK {
				t.Errorf("RevokedKey(Key(%q, %q), %d) = %q, %v, want %q, %v", l.sid, l.sub, l.gen, kind, ok, l.wantKind, l.wantOK)
			}
		}
	}
}

func TestApplyIdempotent(t *testing.T) {
	exp := t0.Add(time.Hour)
	entries := []Entry{
		session(1, sidN(1), exp),
		session(2, "legacy-session", exp),
		subject(3, "alice", 4, exp),
		subject(4, "alice", 2, exp.Add(time.Hour)),
	}
	once, twice := NewSet(0), NewSet(0)
	for _, e := range entries {
		mustApply(t, once, e)
		mustApply(t, twice, e)
	}
	for _, e := range entries {
		mustApply(t, twice, e)
	}
	if once.Len() != 3 || twice.Len() != 3 {
		t.Fatalf("Len() = %d and %d, want 3 and 3", once.Len(), twice.Len())
	}
	for _, now := range []time.Time{exp.Add(-time.Second), exp, exp.Add(time.Hour)} {
		if a, b := once.Prune(now), twice.Prune(now); a != b {
			t.Errorf("Prune(%v) = %d once, %d twice, want equal", now, a, b)
		}
	}
}

func mustApply(t *testing.T, s *Set, e Entry) {
	t.Helper()
	if err := s.Apply(e); err != nil {
		t.Fatalf("Apply(%+v) = %v, want nil", e, err)
	}
}

func TestPrune(t *testing.T) {
	half := t0.Add(500 * time.Millisecond)
	tests := []struct {
		name    string
		entry   Entry
		now     time.Time
		wantN   int
		wantLen int
	}{
		{"session before expiry", session(1, sidN(1), t0), t0.Add(-time.Nanosecond), 0, 1},
		{"session at expiry", session(1, sidN(1), t0), t0, 1, 0},
		{"session after expiry", session(1, sidN(1), t0), t0.Add(time.Hour), 1, 0},
		{"string session before expiry", session(1, "x", t0), t0.Add(-time.Nanosecond), 0, 1},
		{"string session at expiry", session(1, "x", t0), t0, 1, 0},
		{"subject before expiry", subject(1, "alice", 1, t0), t0.Add(-time.Nanosecond), 0, 1},
		{"subject at expiry", subject(1, "alice", 1, t0), t0, 1, 0},
		{"subject expiry past 2106 is kept", subject(1, "alice", 1, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)), time.Date(2105, 1, 1, 0, 0, 0, 0, time.UTC), 0, 1},
		{"subject expiry before 1970", subject(1, "alice", 1, time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)), time.Unix(0, 0), 1, 0},
		// Expiries are kept in whole seconds rounded up: never dropped early,
		// at most a second late.
		{"fractional expiry kept at its instant", session(1, sidN(1), half), half, 0, 1},
		{"fractional expiry dropped at the next second", session(1, sidN(1), half), t0.Add(time.Second), 1, 0},
		{"zero expiry", session(1, sidN(1), time.Time{}), t0, 1, 0},
		{"expiry past 2106 is kept", session(1, sidN(1), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)), time.Date(2105, 1, 1, 0, 0, 0, 0, time.UTC), 0, 1},
		{"expiry before 1970", session(1, sidN(1), time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)), time.Unix(0, 0), 1, 0},
		// An expiry kept as 2106's last second (the most 32 bits hold)
		// stands for any later one: a clock past 2106 must not drop an entry
		// that may cover a token of 2200 it still accepts.
		{"subject expiry past 2106 kept by a clock past 2106", subject(1, "alice", 1, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)), time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC), 0, 1},
		{"session expiry past 2106 kept by a clock past 2106", session(1, sidN(1), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)), time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC), 0, 1},
		{"subject expiry before 2106 dropped by a clock past it", subject(1, "alice", 1, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)), time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC), 1, 0},
		{"session expiry before 2106 dropped by a clock past it", session(1, sidN(1), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)), time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC), 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSet(0)
			mustApply(t, s, tt.entry)
			if n := s.Prune(tt.now); n != tt.wantN {
				t.Errorf("Prune(%v) = %d, want %d", tt.now, n, tt.wantN)
			}
			if s.Len() != tt.wantLen {
				t.Errorf("Len() = %d, want %d", s.Len(), tt.wantLen)
			}
			_, ok := s.Revoked(tt.entry.Session, tt.entry.Subject, 0)
			if ok != (tt.wantLen == 1) {
				t.Errorf("Revoked(%q, %q, 0) after Prune = %v, want %v", tt.entry.Session, tt.entry.Subject, ok, tt.wantLen == 1)
			}
		})
	}
}

func TestPruneKeepsLatestExpiry(t *testing.T) {
	s := NewSet(0)
	mustApply(t, s, session(1, sidN(1), t0.Add(2*time.Hour)))
	mustApply(t, s, session(2, sidN(1), t0.Add(time.Hour)))
	mustApply(t, s, subject(3, "alice", 2, t0.Add(2*time.Hour)))
	mustApply(t, s, subject(4, "alice", 3, t0.Add(time.Hour)))
	if n := s.Prune(t0.Add(time.Hour)); n != 0 {
		t.Fatalf("Prune(+1h) = %d, want 0", n)
	}
	checkLookups(t, s, []lookup{
		{sid: sidN(1), wantKind: KindSession, wantOK: true},
		{sub: "alice", gen: 2, wantKind: KindSubject, wantOK: true},
	})
	if n := s.Prune(t0.Add(2 * time.Hour)); n != 2 {
		t.Fatalf("Prune(+2h) = %d, want 2", n)
	}
}

func TestErrFull(t *testing.T) {
	exp := t0.Add(time.Hour)
	s := NewSet(3)
	for _, e := range []Entry{session(1, sidN(1), exp), session(2, "legacy", exp), subject(3, "alice", 1, exp)} {
		mustApply(t, s, e)
	}
	for _, e := range []Entry{session(4, sidN(2), exp), session(5, "legacy2", exp), subject(6, "bob", 1, exp)} {
		if err := s.Apply(e); !errors.Is(err, ErrFull) {
			t.Errorf("Apply(%+v) = %v, want ErrFull", e, err)
		}
	}
	if s.Len() != 3 {
		t.Errorf("Len() = %d, want 3", s.Len())
	}
	checkLookups(t, s, []lookup{
		{sid: sidN(2)},
		{sid: "legacy2"},
		{sub: "bob", gen: 0},
		{sub: "alice", gen: 1},
	})
	// Updating a key already present needs no room.
	for _, e := range []Entry{session(7, sidN(1), exp.Add(time.Hour)), subject(8, "alice", 2, exp)} {
		mustApply(t, s, e)
	}
	checkLookups(t, s, []lookup{{sub: "alice", gen: 1, wantKind: KindSubject, wantOK: true}})
	if n := s.Prune(exp); n != 2 { // legacy and alice; sidN(1) now lasts longer
		t.Fatalf("Prune(exp) = %d, want 2", n)
	}
	mustApply(t, s, subject(9, "bob", 1, exp))
	mustApply(t, s, session(10, sidN(2), exp))
}

func TestApplyInvalid(t *testing.T) {
	tests := []struct {
		name  string
		entry Entry
	}{
		{"unknown kind", Entry{Seq: 1, Kind: "device", Session: sidN(1)}},
		{"session without sid", Entry{Seq: 1, Kind: KindSession}},
		{"subject without sub", Entry{Seq: 1, Kind: KindSubject, Generation: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSet(0)
			if err := s.Apply(tt.entry); !errors.Is(err, ErrInvalidEntry) {
				t.Errorf("Apply(%+v) = %v, want ErrInvalidEntry", tt.entry, err)
			}
			if s.Len() != 0 {
				t.Errorf("Len() = %d, want 0", s.Len())
			}
		})
	}
}

func TestReset(t *testing.T) {
	s := NewSet(2)
	mustApply(t, s, session(1, sidN(1), t0))
	mustApply(t, s, subject(2, "alice", 3, t0))
	s.Reset()
	if s.Len() != 0 {
		t.Fatalf("Len() after Reset = %d, want 0", s.Len())
	}
	checkLookups(t, s, []lookup{{sid: sidN(1), sub: "alice", gen: 0}})
	mustApply(t, s, session(3, sidN(2), t0))
	mustApply(t, s, session(4, sidN(3), t0))
}

func TestDecodeSID(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"canonical", sidN(42)},
		{"all zero", "AAAAAAAAAAAAAAAAAAAAAA"},
		{"all ones", "_____________________w"},
		{"non-canonical trailing bits", "AAAAAAAAAAAAAAAAAAAAAB"},
		{"too short", "AAAAAAAAAAAAAAAAAAAAA"},
		{"too long", "AAAAAAAAAAAAAAAAAAAAAAA"},
		{"padded", "AAAAAAAAAAAAAAAAAAAA=="},
		{"standard alphabet", "AAAAAAAAAAAAAAAAAAAA+A"},
		{"empty", ""},
		{"non-ascii", "AAAAAAAAAAAAAAAAAAAé"},
		{"newline", "AA\nAAAAAAAAAAAAAAAAAAA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDecodeSID(t, tt.in)
		})
	}
}

// checkDecodeSID compares decodeSID with the standard library's strict
// decoder, which accepts exactly the canonical encodings, except that it
// skips CR and LF (a session id never contains them); decodeSID also
// refuses the all-zero key.
func checkDecodeSID(t *testing.T, in string) {
	t.Helper()
	want, err := base64.RawURLEncoding.Strict().DecodeString(in)
	wantOK := err == nil && len(want) == 16 && !strings.ContainsAny(in, "\r\n") && string(want) != string(make([]byte, 16))
	k0, k1, ok := decodeSID(in)
	got := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, k0), k1)
	if ok != wantOK || (ok && string(got) != string(want)) {
		t.Errorf("decodeSID(%q) = %x, %v, want %x, %v", in, got, ok, want, wantOK)
	}
}

func FuzzDecodeSID(f *testing.F) {
	for _, s := range []string{sidN(1), "AAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAA=="} {
		f.Add(s)
	}
	f.Fuzz(checkDecodeSID)
}

// TestShardSize: a shard fills two cache lines exactly, on 32-bit as on
// 64-bit platforms (GOARCH=386 go test -run TestShardSize).
func TestShardSize(t *testing.T) {
	if n := unsafe.Sizeof(shard{}); n != shardSize {
		t.Errorf("unsafe.Sizeof(shard{}) = %d, want %d (two cache lines)", n, shardSize)
	}
}

// TestConcurrent is for -race: readers, writers, pruning and resets at once.
func TestConcurrent(t *testing.T) {
	s := NewSet(5000)
	var wg, writers sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		writers.Go(func() {
			for i := range 3000 {
				exp := t0.Add(time.Duration(i%10) * time.Second)
				_ = s.Apply(session(int64(i), sidN(uint64(w*10000+i)), exp))
				_ = s.Apply(subject(int64(i), fmt.Sprint("sub", i%100), int64(i), exp))
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s.Revoked(sidN(uint64(i%6000)), fmt.Sprint("sub", i%100), int64(i%3000))
				s.Revoked("legacy", "", 0)
			}
		})
	}
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.Prune(t0.Add(time.Duration(i%10) * time.Second))
			if i%50 == 0 {
				s.Reset()
			}
			_ = s.Len()
		}
	})
	writers.Wait() // readers and pruning run for as long as the writes take
	close(stop)
	wg.Wait()
	if n := s.Len(); n < 0 || n > 5000 {
		t.Errorf("Len() = %d, want within [0, 5000]", n)
	}
	s.Prune(t0.Add(time.Hour))
	if n := s.Len(); n != 0 {
		t.Errorf("Len() after pruning everything = %d, want 0", n)
	}
}

// TestLookupsDuringApply: while entries pour in (tables growing many times
// over), every lookup of an entry applied before it started finds it, and
// nothing never revoked is ever found. Inserts take no seqlock, so this is
// what shows they cannot make a reader miss an entry.
func TestLookupsDuringApply(t *testing.T) {
	s := NewSet(0)
	const n = 20_000
	var applied atomic.Int64 // entries [0, applied) are in the set
	kinds := []func(i int) (Entry, string, string){
		func(i int) (Entry, string, string) {
			sid := sidN(uint64(i))
			return session(int64(i), sid, t0), sid, ""
		},
		func(i int) (Entry, string, string) {
			sid := fmt.Sprint("legacy-", i)
			return session(int64(i), sid, t0), sid, ""
		},
		func(i int) (Entry, string, string) {
			sub := fmt.Sprint("sub-", i)
			return subject(int64(i), sub, 1, t0), "", sub
		},
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		defer close(stop)
		for i := range n {
			e, _, _ := kinds[i%3](i)
			if err := s.Apply(e); err != nil {
				t.Errorf("Apply(%d) = %v", i, err)
				return
			}
			applied.Store(int64(i + 1))
		}
	})
	for r := range 2 {
		wg.Go(func() {
			for j := r; ; j += 7 {
				select {
				case <-stop:
					return
				default:
				}
				upto := applied.Load()
				if upto == 0 {
					continue
				}
				i := j % int(upto)
				_, sid, sub := kinds[i%3](i)
				if _, ok := s.Revoked(sid, sub, 0); !ok {
					t.Errorf("Revoked(entry %d) = false while %d entries were applied", i, upto)
					return
				}
				if kind, ok := s.Revoked(sidN(uint64(n+j)), fmt.Sprint("never-", j), 0); ok {
					t.Errorf("Revoked(never revoked) = %s", kind)
					return
				}
			}
		})
	}
	wg.Wait()
}
