package feed

import (
	"sort"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// frame is one entry encoded once for every connection. Frames are never
// modified after creation, so connections share them without copying.
type frame struct {
	entry revocation.Entry
	// line is the entry's data line in a revocations event; line[tail:]
	// is its "<sgen> <key>\n", which a continuation line carries, and
	// line[mid:tail] its kind, created_at and expires_at, which a
	// continuation line shares with the line before it. Both offsets are
	// below 80 (see appendLine).
	line      []byte
	mid, tail uint8
}

// middle is what f's line has in common with the line before it when f
// goes as a continuation line.
func (f *frame) middle() []byte { return f.line[f.mid:f.tail] }

// seqLen is the number of decimal digits of a positive seq.
func seqLen(seq int64) int {
	n := 1
	for seq >= 10 {
		seq /= 10
		n++
	}
	return n
}

// ring keeps the most recent frames. It holds every live entry with seq in
// (base, head], head being the hub's position; a reader at a position below
// base has missed frames the ring no longer holds. Not safe for concurrent
// use: the hub guards it.
type ring struct {
	buf   []frame
	start int // index of the oldest frame
	n     int
	base  int64
}

func newRing(size int, base int64) ring {
	return ring{buf: make([]frame, size), base: base}
}

func (r *ring) push(f frame) {
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = f
		r.n++
		return
	}
	r.base = r.buf[r.start].entry.Seq
	r.buf[r.start] = f
	r.start = (r.start + 1) % len(r.buf)
}

func (r *ring) at(i int) frame {
	return r.buf[(r.start+i)%len(r.buf)]
}

// after appends to dst up to limit frames with seq > pos, oldest first.
func (r *ring) after(pos int64, dst []frame, limit int) []frame {
	i := sort.Search(r.n, func(i int) bool { return r.at(i).entry.Seq > pos })
	for ; i < r.n && limit > 0; i++ {
		dst = append(dst, r.at(i))
		limit--
	}
	return dst
}

// reset forgets every frame, as when the log was replaced.
func (r *ring) reset(base int64) {
	clear(r.buf)
	r.start, r.n, r.base = 0, 0, base
}
