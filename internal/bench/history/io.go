package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Writer appends events to a history as JSON lines. Safe for concurrent
// use; the first error sticks and is returned by Close.
type Writer struct {
	began time.Time

	mu  sync.Mutex
	bw  *bufio.Writer
	enc *json.Encoder
	err error
	n   int
}

// NewWriter starts a history on w; times are counted from now.
func NewWriter(w io.Writer) *Writer {
	bw := bufio.NewWriterSize(w, 256<<10)
	return &Writer{began: time.Now(), bw: bw, enc: json.NewEncoder(bw)}
}

// Now is the time since the history began, in nanoseconds, by the
// monotonic clock.
func (w *Writer) Now() int64 { return int64(time.Since(w.began)) }

// Add writes e; a zero T is filled with Now.
func (w *Writer) Add(e Event) {
	if e.T == 0 {
		e.T = w.Now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.enc.Encode(e)
		w.n++
	}
}

// Len is the number of events written.
func (w *Writer) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Close flushes the history; it does not close the underlying writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// Read parses a history. Events come back in file order; the checker
// does not rely on that order (events are written when answered, not when
// sent).
func Read(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []Event
	for line := 1; sc.Scan(); line++ {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("history: line %d: %w", line, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
