package feed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The report stream (POST ReportsPath): one long request per feed stream,
// full duplex. The client writes one line per report and the node answers
// each, in order, on the same request's response:
//
//	report: <n> <position> <ready: 1 or 0>\n
//	answer: <n> <head> <lease_ms>\n
//	refusal: ! <code> <description>\n   (the node then ends the response)
//
// A report costs the node one line read and one written, against an HTTP
// request each for a single report (ServePosition).

// maxReportLine caps a report or answer line.
const maxReportLine = 256

var (
	// errNoChannel: the report stream could not be used on this feed
	// stream; the client reports with one request each.
	errNoChannel = errors.New("feed: report stream unusable")
	// errChannelClosed: the report stream ended.
	errChannelClosed = errors.New("feed: report stream closed")
	// errReportLine: a report line the node cannot read.
	errReportLine = errors.New("feed: malformed report line")
)

// answer is a report's answer: the node's head and the lease.
type answer struct {
	head, leaseMS int64
}

// refusal is a report refused for a reason the client acts on (409).
type refusal struct {
	code, desc string
}

func (r *refusal) Error() string { return "feed: report refused: " + r.code + ": " + r.desc }

func isRefusal(err error) bool {
	var r *refusal
	return errors.As(err, &r)
}

// statusError is the error of a refused report request or report stream.
func statusError(status string, code int, body []byte) error {
	if c := errorCode(body); code == http.StatusConflict && c != "" {
		return &refusal{code: c, desc: strings.TrimSpace(string(body))}
	}
	return fmt.Errorf("%w: %s: %s", ErrStatus, status, strings.TrimSpace(string(body)))
}

// reportChannel is the client's end of a report stream.
type reportChannel struct {
	lines   chan []byte       // to the writer goroutine
	answers chan answerResult // from the reader goroutine
	cancel  context.CancelFunc
	n       int64 // the last report's number
	// opened is closed once the node has answered 200: until then the
	// client reports with one request each. A reverse proxy that holds
	// request bodies until they end (nginx's default) never lets the
	// answer through, and the client goes on that way.
	opened chan struct{}
	// ended is closed once the report stream's reader has stopped (after
	// it passed on the error that stopped it, if any).
	ended chan struct{}
}

// isOpen reports whether the node has answered the report stream with 200.
func (ch *reportChannel) isOpen() bool {
	select {
	case <-ch.opened:
		return true
	default:
		return false
	}
}

// waitOpen waits up to d for the node's 200, and reports whether it came.
// It returns early, false, when the report stream fails first.
func (ch *reportChannel) waitOpen(ctx context.Context, d time.Duration) bool {
	if ch.isOpen() {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch.opened:
		return true
	case <-ch.ended:
		return ch.isOpen()
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// failed returns the error that ended the report stream before it opened,
// if one did.
func (ch *reportChannel) failed() error {
	select {
	case r := <-ch.answers:
		if r.err == nil {
			r.err = errors.New("feed: report answer before any report")
		}
		return r.err
	default:
		return nil
	}
}

type answerResult struct {
	n   int64
	a   answer
	err error
}

// openReportChannel starts the report stream's request to base. It does
// not wait for the answer: the first round trip does.
func (s *follower) openReportChannel(ctx context.Context, base string) *reportChannel {
	ctx, cancel := context.WithCancel(ctx)
	ch := &reportChannel{lines: make(chan []byte, maxQueuedLines), answers: make(chan answerResult, 1), cancel: cancel,
		opened: make(chan struct{}), ended: make(chan struct{})}
	body := &lineBody{lines: ch.lines, done: ctx.Done()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+ReportsPath, body)
	if err != nil {
		ch.answers <- answerResult{err: err}
		close(ch.ended)
		return ch
	}
	st := s.c.State()
	named := *s.c.Follower
	named.ID = st.ID
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set(headerFollower, named.header(st.Epoch))
	if tok := s.c.token(base); tok != "" {
		req.Header.Set(headerToken, tok)
	}
	if key := s.c.apiKey(); key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	go ch.read(ctx, s.http, req)
	return ch
}

// read sends the request and passes on the answers until the response
// ends or ctx does.
func (ch *reportChannel) read(ctx context.Context, hc *http.Client, req *http.Request) {
	defer close(ch.ended)
	send := func(r answerResult) bool {
		select {
		case ch.answers <- r:
			return true
		case <-ctx.Done():
			return false
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		send(answerResult{err: err})
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		send(answerResult{err: statusError(resp.Status, resp.StatusCode, b)})
		return
	}
	close(ch.opened)
	br := bufio.NewReaderSize(resp.Body, maxReportLine)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			send(answerResult{err: fmt.Errorf("%w: %w", errChannelClosed, err)})
			return
		}
		r := parseAnswer(line)
		if !send(r) || r.err != nil {
			return
		}
	}
}

// parseAnswer reads an answer or refusal line.
func parseAnswer(line []byte) answerResult {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if rest, ok := bytes.CutPrefix(line, []byte("! ")); ok {
		code, desc, _ := strings.Cut(string(rest), " ")
		return answerResult{err: &refusal{code: code, desc: desc}}
	}
	f, three := fields3(line)
	var r answerResult
	var ok [3]bool
	if three {
		r.n, ok[0] = atoi(f[0])
		r.a.head, ok[1] = atoi(f[1])
		r.a.leaseMS, ok[2] = atoi(f[2])
	}
	if ok != [3]bool{true, true, true} {
		r.err = fmt.Errorf("feed: malformed report answer %q", line)
	}
	return r
}

// maxQueuedLines bounds the report lines waiting for the HTTP client to
// send them.
const maxQueuedLines = 4

// lineBody is the report stream's request body: the lines queued, read by
// the HTTP client's writer as they come (one hand-over per line, where a
// pipe would add a goroutine of its own), until the request's context
// ends.
type lineBody struct {
	lines chan []byte
	done  <-chan struct{}
	cur   []byte
}

func (b *lineBody) Read(p []byte) (int, error) {
	if len(b.cur) == 0 {
		select {
		case l, ok := <-b.lines:
			if !ok {
				return 0, io.EOF
			}
			b.cur = l
		case <-b.done:
			return 0, errChannelClosed
		}
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

// queue hands a report line to the HTTP client's writer.
func (ch *reportChannel) queue(line []byte) error {
	select {
	case ch.lines <- line:
		return nil
	default:
		return fmt.Errorf("%w: reports are still being sent", errChannelClosed)
	}
}

// send sends one report that wants no answer (numbered 0): the node
// records the position and answers nothing, unless it refuses the report
// (the refusal then ends the report stream, and the next round trip
// returns it).
func (ch *reportChannel) send(pos int64, ready bool) error {
	return ch.queue(appendReportLine(nil, 0, pos, ready))
}

// roundTrip sends one report and waits up to wait for its answer, or
// until ctx (the stream) ends.
func (ch *reportChannel) roundTrip(ctx context.Context, pos int64, ready bool, wait time.Duration) (answer, error) {
	ch.n++
	if err := ch.queue(appendReportLine(nil, ch.n, pos, ready)); err != nil {
		return answer{}, err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case r := <-ch.answers:
		switch {
		case r.err != nil:
			return answer{}, r.err
		case r.n != ch.n:
			return answer{}, fmt.Errorf("feed: report answer %d, want %d", r.n, ch.n)
		}
		return r.a, nil
	case <-t.C:
		return answer{}, fmt.Errorf("%w: no answer within %v", errChannelClosed, wait)
	case <-ctx.Done():
		return answer{}, fmt.Errorf("%w: %w", errChannelClosed, ctx.Err())
	}
}

func (ch *reportChannel) close() {
	ch.cancel()
	close(ch.lines)
}

// reportLineCap holds any report line (two numbers of up to 20
// characters, the readiness, separators): one allocation per line.
const reportLineCap = 48

func appendReportLine(dst []byte, n, pos int64, ready bool) []byte {
	if dst == nil {
		dst = make([]byte, 0, reportLineCap)
	}
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, pos, 10)
	if ready {
		return append(dst, " 1\n"...)
	}
	return append(dst, " 0\n"...)
}

// fields3 splits a report or answer line into its three fields, as
// bytes.Fields does, without allocating for a line of ASCII; three is
// false when the line has another number of fields.
func fields3(line []byte) (f [3][]byte, three bool) {
	if !isASCII(line) {
		all := bytes.Fields(line)
		if len(all) != 3 {
			return f, false
		}
		return [3][]byte{all[0], all[1], all[2]}, true
	}
	n := 0
	for i := 0; i < len(line); {
		if isASCIISpace(line[i]) {
			i++
			continue
		}
		j := i
		for j < len(line) && !isASCIISpace(line[j]) {
			j++
		}
		if n == 3 {
			return f, false
		}
		f[n], n, i = line[i:j], n+1, j
	}
	return f, n == 3
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// isASCIISpace is what bytes.Fields takes as a space among ASCII bytes.
func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// parseReportLine reads a report line (without its end).
func parseReportLine(line []byte) (n, pos int64, ready bool, err error) {
	f, three := fields3(line)
	var ok [3]bool
	if three {
		n, ok[0] = atoi(f[0])
		pos, ok[1] = atoi(f[1])
		ok[2] = len(f[2]) == 1 && (f[2][0] == '0' || f[2][0] == '1')
	}
	if ok != [3]bool{true, true, true} || n < 0 || pos < 0 {
		return 0, 0, false, fmt.Errorf("%w: a report line is <n> <position> <ready: 0 or 1>, got %q", errReportLine, line)
	}
	return n, pos, f[2][0] == '1', nil
}

func appendAnswer(dst []byte, n int64, a positionAck) []byte {
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, a.Head, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, a.LeaseMS, 10)
	return append(dst, '\n')
}
