package feed

import (
	"bytes"
	"strconv"
	"time"
)

// segment is one batch the tailer published, (from, to], encoded once as
// the revocations events every connection at from writes as they are: a
// revocation costs the hub one encoding, and each connection one write of
// shared bytes. A connection elsewhere (catching up, or resuming inside a
// batch) encodes its own events from the ring's frames.
type segment struct {
	from, to int64
	data     []byte
	frames   []frame
	// expires is the earliest expiry among the frames: past it (and the
	// hub's grace) the segment holds an entry no longer sent, and
	// connections write its frames one by one instead.
	expires time.Time
}

// newSegment encodes frames, the live entries in (from, to]. head is the
// Source's head when they were read: while it is beyond an event's last
// entry (a bulk revocation read in batches), the event says so, so that
// followers can make room for what follows at once.
func newSegment(from, to int64, frames []frame, head int64) segment {
	s := segment{from: from, to: to, frames: append([]frame(nil), frames...)}
	b := batcher{head: head}
	for _, f := range frames {
		s.data = b.add(s.data, f)
		if s.expires.IsZero() || f.entry.ExpiresAt.Before(s.expires) {
			s.expires = f.entry.ExpiresAt
		}
	}
	s.data = b.end(s.data)
	return s
}

// Bounds of the segments kept: the last few batches are all a connection
// that was woken late needs; one further behind reads the ring.
const (
	maxSegments     = 64
	maxSegmentBytes = 4 << 20
)

// segments is the latest segments, oldest first, each starting where the
// one before it ends. The hub guards it.
type segments struct {
	s     []segment
	bytes int
}

func (ss *segments) push(s segment) {
	ss.s = append(ss.s, s)
	ss.bytes += len(s.data)
	for len(ss.s) > maxSegments || ss.bytes > maxSegmentBytes && len(ss.s) > 1 {
		ss.bytes -= len(ss.s[0].data)
		ss.s[0] = segment{}
		ss.s = ss.s[1:]
	}
}

func (ss *segments) reset() {
	clear(ss.s)
	ss.s, ss.bytes = nil, 0
}

// from appends to dst the segments from the one that starts at pos on, if
// one does.
func (ss *segments) from(pos int64, dst []segment) []segment {
	for i := len(ss.s) - 1; i >= 0; i-- {
		if ss.s[i].from == pos {
			return append(dst, ss.s[i:]...)
		}
		if ss.s[i].from < pos {
			break
		}
	}
	return dst
}

// batcher groups consecutive lines into revocations events of at most
// maxBatchEntries lines and about maxBatchBytes. An entry that continues
// the one before it in the event goes as a continuation line.
type batcher struct {
	// head, when beyond an event's last seq, goes in the event's head
	// field; zero: none.
	head     int64
	n, bytes int
	last     int64  // the pending event's last seq
	start    int    // where the pending event begins in the output
	middle   []byte // its last line's middle (frame.middle)
}

// add appends f's line to the pending event, starting a new one when full.
// The event's header goes in front of its lines when it ends (end), once
// its last seq is known.
func (b *batcher) add(dst []byte, f frame) []byte {
	cont := b.n > 0 && f.entry.Seq == b.last+1 && bytes.Equal(f.middle(), b.middle)
	size := len(f.line)
	if cont {
		size = len(contPrefix) + len(f.line) - int(f.tail)
	}
	if b.n == maxBatchEntries || b.n > 0 && b.bytes+size > maxBatchBytes {
		dst = b.end(dst)
		cont, size = false, len(f.line)
	}
	if b.n == 0 {
		b.start = len(dst)
	}
	b.n, b.bytes, b.last, b.middle = b.n+1, b.bytes+size, f.entry.Seq, f.middle()
	if cont {
		return append(append(dst, contPrefix...), f.line[f.tail:]...)
	}
	return append(dst, f.line...)
}

// end closes the pending event, if any: it inserts the id and event lines
// before its data lines and appends the blank line.
func (b *batcher) end(dst []byte) []byte {
	if b.n == 0 {
		return dst
	}
	var hdr [96]byte
	h := append(hdr[:0], "id: "...)
	h = strconv.AppendInt(h, b.last, 10)
	h = append(h, "\nevent: "+EventRevocations+"\n"...)
	if b.head > b.last {
		h = append(h, headField...)
		h = strconv.AppendInt(h, b.head, 10)
		h = append(h, '\n')
	}
	dst = append(dst, h...) // grow by len(h), then shift the lines
	copy(dst[b.start+len(h):], dst[b.start:len(dst)-len(h)])
	copy(dst[b.start:], h)
	*b = batcher{head: b.head}
	return append(dst, '\n')
}
