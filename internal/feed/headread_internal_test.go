package feed

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// gatedHead is a Source whose Head calls wait for a release each and
// return how many calls had begun.
type gatedHead struct {
	calls   atomic.Int64
	started chan struct{}
	release chan struct{}
}

func (g *gatedHead) Head(context.Context) (int64, error) {
	n := g.calls.Add(1)
	g.started <- struct{}{}
	<-g.release
	return n, nil
}

func (g *gatedHead) EntriesAfter(context.Context, int64, int) ([]revocation.Entry, error) {
	return nil, nil
}

func (g *gatedHead) Subscribe() (<-chan struct{}, func()) { return nil, func() {} }

// TestSourceHeadShared: streams opening while a head read runs share the
// next read, which begins after they asked; none is given the read that
// was already running.
func TestSourceHeadShared(t *testing.T) {
	t.Parallel()
	g := &gatedHead{started: make(chan struct{}), release: make(chan struct{})}
	h := NewHub(g, HubConfig{})
	first := make(chan int64)
	go func() {
		head, _ := h.sourceHead(context.Background())
		first <- head
	}()
	<-g.started // read 1 runs
	const n = 20
	var wg sync.WaitGroup
	heads := make([]int64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			heads[i], _ = h.sourceHead(context.Background())
		}()
	}
	// Every asker has joined the next read once the running one ends and
	// the next begins; wait until all of them are in.
	for deadline := time.Now().Add(time.Minute); ; runtime.Gosched() {
		h.heads.mu.Lock()
		joined := h.heads.next != nil && h.heads.next.joiners == n
		h.heads.mu.Unlock()
		if joined {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the askers did not all join the next read within a minute")
		}
	}
	g.release <- struct{}{}
	if got := <-first; got != 1 {
		t.Errorf("first sourceHead = %d, want read 1", got)
	}
	<-g.started // read 2, for all of the others
	g.release <- struct{}{}
	wg.Wait()
	for i, head := range heads {
		if head != 2 {
			t.Errorf("sourceHead of stream %d = read %d, want read 2 (begun after it asked)", i, head)
		}
	}
	if c := g.calls.Load(); c != 2 {
		t.Errorf("Head called %d times for %d streams, want 2", c, n+1)
	}
}

// downHead is a Source whose every read fails.
type downHead struct{}

var errHeadDown = errors.New("head: down")

func (downHead) Head(context.Context) (int64, error) { return 0, errHeadDown }

func (downHead) EntriesAfter(context.Context, int64, int) ([]revocation.Entry, error) {
	return nil, errHeadDown
}

func (downHead) Subscribe() (<-chan struct{}, func()) { return nil, func() {} }

// TestSourceHeadFailureFailsEveryStream: every stream that joined a read
// of the head which failed gets the error, never a head: a stream given
// a head it was not read (0) would take it for its floor and could tell
// its client it is current without entries the Source already holds.
func TestSourceHeadFailureFailsEveryStream(t *testing.T) {
	t.Parallel()
	h := NewHub(downHead{}, HubConfig{})
	const n = 20
	type result struct {
		head int64
		err  error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			head, err := h.sourceHead(context.Background())
			results <- result{head, err}
		}()
	}
	for range n {
		if r := <-results; !errors.Is(r.err, errHeadDown) {
			t.Errorf("sourceHead of a Source that fails = %d, %v; want %v", r.head, r.err, errHeadDown)
		}
	}
}
