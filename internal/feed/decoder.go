package feed

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// Limits of the Decoder, so that a hostile or broken server cannot make a
// client allocate without bound.
const (
	// MaxLineSize is the longest line the Decoder accepts.
	MaxLineSize = 64 << 10
	// MaxEventSize is the largest data an event may carry.
	MaxEventSize = 64 << 10
)

var (
	// ErrLineTooLong is returned by Decoder.Next for a line over MaxLineSize.
	ErrLineTooLong = errors.New("feed: event stream line too long")
	// ErrEventTooLarge is returned by Decoder.Next for an event whose data
	// exceeds MaxEventSize.
	ErrEventTooLarge = errors.New("feed: event too large")
)

// Event is one event of a Server-Sent Events stream.
type Event struct {
	// ID is the last event ID seen on the stream, as the SSE spec defines
	// it: it carries over to events that have no id field.
	ID string
	// Type is the event field, "message" if the event has none.
	Type string
	// Data is the event's data lines joined by "\n". It is valid until the
	// next call to Next, which reuses its memory.
	Data []byte
	// Head is the event's head field, the feed's hint on a revocations
	// event that more entries follow up to that seq; zero when the event
	// has none, or one that is not a positive decimal number.
	Head int64
}

// Decoder reads Server-Sent Events: the subset of the HTML living standard
// the feed needs (fields id, event and data, and the feed's head; comments;
// LF, CRLF and CR line ends; a leading byte order mark). Other fields, retry
// included, are ignored. A Decoder is not safe for concurrent use.
type Decoder struct {
	r   io.Reader
	buf []byte
	// small is the buffer of minReadSize the Decoder starts with, kept
	// while buf is a burst's (burstBuffers).
	small  []byte
	r0, r1 int // unread bytes are buf[r0:r1]
	// cr is where the first CR at or after r0 is in buf, r1 if none is
	// before it; below r0 when not yet looked for. A stream's lines end in
	// LF alone, as the feed's do, and one look per read then finds no CR
	// for all its lines.
	cr      int
	readErr error
	err     error // sticky: the stream is not resumable past it
	skipLF  bool  // the last line ended with CR: a following LF belongs to it
	started bool
	line    []byte // a line that spans reads
	id, typ string
	head    int64
	data    []byte
	// pooledData says data is a burst's buffer (burstData).
	pooledData bool
	noProg     int
	// more is set when the last event said more entries follow (its head
	// field): the stream is in a burst, whatever the size of the reads.
	more bool
}

// Sizes of a Decoder's read buffer: it starts small (an idle stream brings
// a few hundred bytes at a time), and once a read fills it, as in a burst,
// where one read per event of entries (about 32 KiB) costs a fraction of
// eight, reads go to a buffer of maxReadSize. Once the burst ends, the
// small buffer serves again (see fill).
const (
	minReadSize = 4 << 10
	maxReadSize = 32 << 10
)

// burstBuffers and burstData hold the read buffers and the event data
// buffers of decoders in a burst, shared by the process's decoders: a bulk
// revocation reaches each of a process's followers at once, and memory
// that a burst does not make afresh, in steps, for every one of them costs
// it less (a page's first touch is dear on a virtual machine). A decoder
// takes a read buffer as its burst begins and gives it back as the burst
// ends, and holds a data buffer only while it reads an event (idleData).
var (
	burstBuffers = sync.Pool{New: func() any { return new([maxReadSize]byte) }}
	burstData    = sync.Pool{New: func() any { return new([burstDataSize]byte) }}
)

// burstDataSize holds the data of any event a node sends (maxBatchBytes of
// lines, less their field names).
const burstDataSize = maxBatchBytes

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	buf := make([]byte, minReadSize)
	return &Decoder{r: r, buf: buf, small: buf, cr: -1}
}

var bom = []byte("\xef\xbb\xbf")

// Next returns the next event. At the end of the stream it returns io.EOF
// (an unfinished event is discarded, as the spec says); a line over
// MaxLineSize gives ErrLineTooLong and an event over MaxEventSize
// ErrEventTooLarge. After an error, Next keeps returning it.
func (d *Decoder) Next() (Event, error) {
	if d.err != nil {
		return Event{}, d.err
	}
	for {
		line, err := d.readLine()
		if err != nil {
			d.err = err
			return Event{}, err
		}
		if !d.started {
			d.started = true
			line = bytes.TrimPrefix(line, bom)
		}
		if len(line) == 0 {
			if ev, ok := d.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if err := d.field(line); err != nil {
			d.err = err
			return Event{}, err
		}
	}
}

// dispatch ends the event being read at a blank line. An event without any
// data line is not dispatched.
func (d *Decoder) dispatch() (Event, bool) {
	typ, head := d.typ, d.head
	d.typ, d.head = "", 0
	if len(d.data) == 0 {
		return Event{}, false
	}
	if typ == "" {
		typ = "message"
	}
	ev := Event{ID: d.id, Type: typ, Data: d.data[:len(d.data)-1], Head: head}
	d.data = d.data[:0]
	d.more = head > 0
	return ev, true
}

func (d *Decoder) field(line []byte) error {
	if value, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
		// Most lines of a stream: every entry of a revocations event.
		return d.appendData(value)
	}
	if line[0] == ':' {
		return nil // comment
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		value = bytes.TrimPrefix(value, []byte(" "))
	}
	switch string(name) {
	case "event":
		d.typ = internType(value)
	case "data":
		return d.appendData(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != d.id {
			d.id = string(value)
		}
	case "head":
		if n, ok := atoi(value); ok && n > 0 {
			d.head = n
		}
	}
	return nil
}

// appendData appends a data line's value to the event's data.
func (d *Decoder) appendData(value []byte) error {
	need := len(d.data) + len(value) + 1
	if need > MaxEventSize {
		return ErrEventTooLarge
	}
	if need > cap(d.data) && need <= burstDataSize && len(d.buf) == maxReadSize && !d.pooledData {
		// In a burst: the data buffer the burst's events need, at once.
		b := burstData.Get().(*[burstDataSize]byte)
		d.data, d.pooledData = append(b[:0], d.data...), true
	}
	d.data = grow(d.data, len(value)+1, MaxEventSize)
	d.pooledData = d.pooledData && cap(d.data) == burstDataSize
	d.data = append(append(d.data, value...), '\n')
	return nil
}

// internType avoids an allocation per event for the feed's own types.
func internType(b []byte) string {
	switch string(b) {
	case EventAsk:
		return EventAsk
	case EventRevocations:
		return EventRevocations
	case EventHeartbeat:
		return EventHeartbeat
	case EventReset:
		return EventReset
	case EventNodes:
		return EventNodes
	}
	return string(b)
}

// readLine returns the next line without its end. The result is valid
// until the next call.
func (d *Decoder) readLine() ([]byte, error) {
	d.line = d.line[:0]
	for {
		if d.r0 == d.r1 {
			if err := d.fill(); err != nil {
				return nil, err
			}
			continue
		}
		win := d.buf[d.r0:d.r1]
		if d.skipLF {
			d.skipLF = false
			if win[0] == '\n' {
				d.r0++
				continue
			}
		}
		i := d.indexLineEnd(win)
		if i < 0 {
			if len(d.line)+len(win) > MaxLineSize {
				return nil, ErrLineTooLong
			}
			d.line = append(grow(d.line, len(win), MaxLineSize), win...)
			d.r0 = d.r1
			continue
		}
		if len(d.line)+i > MaxLineSize {
			return nil, ErrLineTooLong
		}
		d.skipLF = win[i] == '\r'
		d.r0 += i + 1
		if len(d.line) == 0 {
			return win[:i], nil
		}
		d.line = append(grow(d.line, i, MaxLineSize), win[:i]...)
		return d.line, nil
	}
}

// indexLineEnd returns the index of the first CR or LF in win, the unread
// bytes, or -1.
func (d *Decoder) indexLineEnd(win []byte) int {
	if d.cr < d.r0 {
		d.cr = d.r1
		if j := bytes.IndexByte(win, '\r'); j >= 0 {
			d.cr = d.r0 + j
		}
	}
	cr := d.cr - d.r0
	if cr < len(win) {
		win = win[:cr]
	}
	if i := bytes.IndexByte(win, '\n'); i >= 0 {
		return i
	}
	if cr < d.r1-d.r0 {
		return cr
	}
	return -1
}

// fill reads more input into the empty buffer. Its size follows the
// stream: a burst's buffer (burstBuffers) once the last read filled the
// small one (a burst goes on); the small one again, with the burst's
// buffer given back, when the last read did not fill it and neither the
// last event nor the one being read says more entries follow (head): the
// stream has paused, and this read may wait for long (a follower's stream
// is idle most of the time, and one process may hold thousands). A read
// short of the buffer alone does not end a burst: the hub writes a bulk one
// segment at a time, and a follower that keeps up reads one write per read,
// never a full buffer.
func (d *Decoder) fill() error {
	if d.readErr != nil {
		return d.readErr
	}
	switch {
	case d.r1 == len(d.buf) && len(d.buf) < maxReadSize:
		d.buf = burstBuffers.Get().(*[maxReadSize]byte)[:]
	case d.r1 < len(d.buf) && len(d.buf) > minReadSize && !d.more && d.head == 0:
		burstBuffers.Put((*[maxReadSize]byte)(d.buf))
		d.buf = d.small
		d.line = shrink(d.line)
	}
	d.data = d.idleData()
	n, err := d.r.Read(d.buf)
	d.r0, d.r1, d.cr = 0, n, -1
	if err != nil {
		d.readErr = err
	}
	if n > 0 {
		d.noProg = 0
		return nil
	}
	if err != nil {
		return err
	}
	if d.noProg++; d.noProg >= 100 {
		d.readErr = io.ErrNoProgress
		return d.readErr
	}
	return nil
}

// grow makes room for n more bytes in b without letting its capacity pass
// limit (append alone may overshoot by up to twice).
func grow(b []byte, n, limit int) []byte {
	need := len(b) + n
	if need <= cap(b) {
		return b
	}
	c := min(max(2*cap(b), need, 512), limit)
	nb := make([]byte, len(b), c)
	copy(nb, b)
	return nb
}

// idleData is what the event data buffer becomes before a read, which
// may wait: kept while it holds part of an event; else a burst's given
// back to burstData (the next event of the burst takes one again: only
// the followers amid an event hold one), and, past a burst, one larger
// than minReadSize let go.
func (d *Decoder) idleData() []byte {
	switch {
	case len(d.data) > 0:
		return d.data
	case d.pooledData:
		burstData.Put((*[burstDataSize]byte)(d.data[:burstDataSize]))
		d.pooledData = false
		return nil
	case len(d.buf) == minReadSize:
		return shrink(d.data)
	}
	return d.data
}

// shrink lets a buffer larger than minReadSize go, unless it holds part
// of what is being read (an event's data lines, a line that spans reads).
func shrink(b []byte) []byte {
	if len(b) > 0 || cap(b) <= minReadSize {
		return b
	}
	return nil
}
