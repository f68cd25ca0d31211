package feed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func decodeAll(t *testing.T, r io.Reader) ([]Event, error) {
	t.Helper()
	d := NewDecoder(r)
	var evs []Event
	for {
		ev, err := d.Next()
		if err != nil {
			return evs, err
		}
		ev.Data = bytes.Clone(ev.Data) // valid only until the next call
		evs = append(evs, ev)
	}
}

func TestDecoder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []Event
		wantErr error
	}{
		{
			name: "feed events",
			in:   "id: 7\nevent: revoke\ndata: {\"seq\":7}\n\nid: 7\nevent: heartbeat\ndata: {\"head\":7,\"time\":1}\n\n",
			want: []Event{{"7", "revoke", []byte(`{"seq":7}`), 0}, {"7", "heartbeat", []byte(`{"head":7,"time":1}`), 0}},
		},
		{
			name: "CRLF and CR line ends",
			in:   "id: 1\r\nevent: revoke\r\ndata: a\r\n\r\nid: 2\revent: reset\rdata: b\r\r",
			want: []Event{{"1", "revoke", []byte("a"), 0}, {"2", "reset", []byte("b"), 0}},
		},
		{
			name: "comments and unknown fields are ignored",
			in:   ": keep-alive\nretry: 10\nfoo: bar\ndata: x\n: more\n\n",
			want: []Event{{"", "message", []byte("x"), 0}},
		},
		{
			name: "data lines are joined; one leading space is dropped",
			in:   "data:a\ndata:  b\ndata\n\n",
			want: []Event{{"", "message", []byte("a\n b\n"), 0}},
		},
		{
			name: "id carries over and ignores NUL",
			in:   "id: 3\ndata: a\n\ndata: b\n\nid: 4\x00\ndata: c\n\nid\ndata: d\n\n",
			want: []Event{{"3", "message", []byte("a"), 0}, {"3", "message", []byte("b"), 0}, {"3", "message", []byte("c"), 0}, {"", "message", []byte("d"), 0}},
		},
		{
			name: "event without data is not dispatched and its type does not leak",
			in:   "event: heartbeat\n\ndata: x\n\n",
			want: []Event{{"", "message", []byte("x"), 0}},
		},
		{
			name: "byte order mark",
			in:   "\xef\xbb\xbfdata: x\n\n",
			want: []Event{{"", "message", []byte("x"), 0}},
		},
		{
			name:    "unfinished event at the end is discarded",
			in:      "data: x\n\ndata: y\n",
			want:    []Event{{"", "message", []byte("x"), 0}},
			wantErr: io.EOF,
		},
		{
			name:    "unfinished line at the end is discarded",
			in:      "data: x\n\ndata: y",
			want:    []Event{{"", "message", []byte("x"), 0}},
			wantErr: io.EOF,
		},
		{
			name: "head field, per event; a malformed one is ignored",
			in:   "id: 5\nevent: revocations\nhead: 90\ndata: x\n\nid: 6\nevent: revocations\ndata: y\n\nhead: -3\ndata: z\n\nhead: 9x\ndata: w\n\n",
			want: []Event{{"5", "revocations", []byte("x"), 90}, {"6", "revocations", []byte("y"), 0}, {"6", "message", []byte("z"), 0}, {"6", "message", []byte("w"), 0}},
		},
		{
			name:    "line too long",
			in:      "data: " + strings.Repeat("x", MaxLineSize) + "\n\n",
			wantErr: ErrLineTooLong,
		},
		{
			name: "line at the limit",
			in:   "data:" + strings.Repeat("x", MaxLineSize-5) + "\n\n",
			want: []Event{{"", "message", []byte(strings.Repeat("x", MaxLineSize-5)), 0}},
		},
		{
			name:    "line too long without an end",
			in:      strings.Repeat("x", 3*MaxLineSize),
			wantErr: ErrLineTooLong,
		},
		{
			name:    "event too large",
			in:      strings.Repeat("data: "+strings.Repeat("x", 1000)+"\n", 70) + "\n",
			wantErr: ErrEventTooLarge,
		},
	}
	for _, tt := range tests {
		for _, mode := range []string{"whole", "one byte at a time"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.in)
				if mode != "whole" {
					r = iotest.OneByteReader(r)
				}
				got, err := decodeAll(t, r)
				wantErr := tt.wantErr
				if wantErr == nil {
					wantErr = io.EOF
				}
				if !errors.Is(err, wantErr) {
					t.Errorf("Next() error = %v, want %v", err, wantErr)
				}
				checkEvents(t, got, tt.want)
			})
		}
	}
}

func checkEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("decoded %d events %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Type != w.Type || string(g.Data) != string(w.Data) || g.Head != w.Head {
			t.Errorf("event %d = {%q %q %q head %d}, want {%q %q %q head %d}", i, g.ID, g.Type, g.Data, g.Head, w.ID, w.Type, w.Data, w.Head)
		}
	}
}

func TestDecoderErrorIsSticky(t *testing.T) {
	t.Parallel()
	d := NewDecoder(strings.NewReader(strings.Repeat("x", MaxLineSize+1) + "\ndata: y\n\n"))
	for range 2 {
		if _, err := d.Next(); !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("Next() = %v, want ErrLineTooLong", err)
		}
	}
}

type stallReader struct{}

func (stallReader) Read([]byte) (int, error) { return 0, nil }

func TestDecoderNoProgress(t *testing.T) {
	t.Parallel()
	if _, err := NewDecoder(stallReader{}).Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("Next() = %v, want io.ErrNoProgress", err)
	}
}

// FuzzDecoder checks that no input makes the decoder panic or hold more
// than its limits, and that how the input arrives (one read, a byte at a
// time, or reads of a few bytes, the line ends split across reads and
// several lines in one) changes none of the events.
func FuzzDecoder(f *testing.F) {
	for _, s := range []string{
		"id: 7\nevent: revoke\ndata: {\"seq\":7}\n\n",
		"event: reset\r\ndata: {\"head\":3}\r\n\r\n",
		": c\rdata:x\r\rid:\x00\n\n",
		"\xef\xbb\xbfdata\n\n",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		var r io.Reader = strings.NewReader(string(in))
		if chunk%2 == 1 {
			r = iotest.OneByteReader(r)
		}
		d := NewDecoder(r)
		for range len(in) + 1 {
			ev, err := d.Next()
			if cap(d.line) > MaxLineSize || cap(d.data) > MaxEventSize || len(ev.Data) > MaxEventSize {
				t.Fatalf("decoder holds line cap %d, data cap %d, event %d bytes; limits %d, %d",
					cap(d.line), cap(d.data), len(ev.Data), MaxLineSize, MaxEventSize)
			}
			if err != nil {
				sameInPieces(t, in, int(chunk)/2+2)
				return
			}
		}
		t.Fatalf("more events than input bytes")
	})
}

// sameInPieces checks that in gives the same events read whole, a byte at
// a time (every line end split across reads) and n bytes at a time.
func sameInPieces(t *testing.T, in []byte, n int) {
	whole, errWhole := decodeAll(t, strings.NewReader(string(in)))
	for _, r := range []struct {
		name string
		r    io.Reader
	}{
		{"a byte at a time", iotest.OneByteReader(strings.NewReader(string(in)))},
		{fmt.Sprintf("%d bytes at a time", n), chunkReader{strings.NewReader(string(in)), n}},
	} {
		got, err := decodeAll(t, r.r)
		same := slices.EqualFunc(whole, got, func(a, b Event) bool {
			return a.ID == b.ID && a.Type == b.Type && a.Head == b.Head && bytes.Equal(a.Data, b.Data)
		})
		if !same || !errors.Is(err, errWhole) {
			t.Fatalf("read whole: %+v, %v; %s: %+v, %v", whole, errWhole, r.name, got, err)
		}
	}
}

// chunkReader reads at most n bytes at a time from r.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// arrivals is a stream that brings its writes one at a time, as a socket
// does: a Read returns what is left of the current write, at most len(p),
// and records len(p).
type arrivals struct {
	writes [][]byte
	sizes  []int
}

func (a *arrivals) Read(p []byte) (int, error) {
	a.sizes = append(a.sizes, len(p))
	if len(a.writes) == 0 {
		return 0, io.EOF
	}
	n := copy(p, a.writes[0])
	if a.writes[0] = a.writes[0][n:]; len(a.writes[0]) == 0 {
		a.writes = a.writes[1:]
	}
	return n, nil
}

// TestDecoderShrinksAfterALargeEvent: the buffers a large event grows (a
// burst of entries) go back to their first size once it is read: the read
// that waits for the next event is given minReadSize bytes, and the event
// after it leaves the decoder holding little.
func TestDecoderShrinksAfterALargeEvent(t *testing.T) {
	t.Parallel()
	large := "id: 9\nevent: revocations\ndata: " + strings.Repeat("x", 40<<10) + "\n\n"
	small := "id: 9\nevent: heartbeat\ndata: {}\n\n"
	a := &arrivals{writes: [][]byte{[]byte(large), []byte(small)}}
	d := NewDecoder(a)
	if ev, err := d.Next(); err != nil || len(ev.Data) != 40<<10 {
		t.Fatalf("Next() = %d bytes, %v; want the large event", len(ev.Data), err)
	}
	if got := cap(d.buf); got != maxReadSize {
		t.Fatalf("read buffer while the large event was read: %d bytes, want it grown to %d", got, maxReadSize)
	}
	reads := len(a.sizes)
	if ev, err := d.Next(); err != nil || ev.Type != EventHeartbeat {
		t.Fatalf("Next() = %q, %v; want the heartbeat", ev.Type, err)
	}
	if got := a.sizes[reads]; got != minReadSize {
		t.Errorf("the read after the large event was given %d bytes, want %d", got, minReadSize)
	}
	if held := cap(d.buf) + cap(d.data) + cap(d.line); held > 2*minReadSize {
		t.Errorf("after the large event and a heartbeat the decoder holds %d bytes (buffer %d, data %d, line %d), want at most %d",
			held, cap(d.buf), cap(d.data), cap(d.line), 2*minReadSize)
	}
}

// TestDecoderKeepsItsBufferThroughABulk: a bulk revocation brought as the
// hub writes it, a segment per write, is read with full-size reads once
// the buffer has grown, though no read fills it (each brings what is left
// of a write); after the bulk's last event, which says no more follows,
// the read that waits for the next event is given minReadSize.
func TestDecoderKeepsItsBufferThroughABulk(t *testing.T) {
	t.Parallel()
	segs := segmentsOf(t, 10_000)
	a := &arrivals{writes: segs}
	d := NewDecoder(a)
	var headless []string // the events that say no more follows
	for {
		ev, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next() = %v", err)
		}
		if ev.Head == 0 {
			headless = append(headless, ev.ID)
		} else if !d.pooledData {
			t.Fatalf("event %s of the bulk: its data in a buffer of %d bytes of the decoder's own, want one of the burst's (burstData)", ev.ID, cap(d.data))
		}
	}
	if want := []string{"10000"}; !slices.Equal(headless, want) {
		t.Fatalf("events without a head: %q, want %q (the bulk's last alone)", headless, want)
	}
	first := slices.Index(a.sizes, maxReadSize)
	if first < 0 {
		t.Fatalf("reads given %v, want the buffer grown to %d", a.sizes, maxReadSize)
	}
	during, after := a.sizes[first:len(a.sizes)-1], a.sizes[len(a.sizes)-1]
	for i, n := range during {
		if n != maxReadSize {
			t.Fatalf("read %d of the bulk was given %d bytes, want %d (reads %v)", first+i, n, maxReadSize, a.sizes)
		}
	}
	if after != minReadSize {
		t.Errorf("the read after the bulk's last event was given %d bytes, want %d", after, minReadSize)
	}
	if d.pooledData || cap(d.data) > minReadSize {
		t.Errorf("after the bulk the decoder holds %d bytes of event data (from the burst's pool: %v), want the burst's buffer given back", cap(d.data), d.pooledData)
	}
	if len(a.sizes) > 2*len(segs)+4 {
		t.Errorf("%d reads for %d writes, want at most %d", len(a.sizes), len(segs), 2*len(segs)+4)
	}
}
