package bench

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errDone stops one worker of a closed loop: it has no work left.
var errDone = errors.New("bench: worker has no work left")

// loadResult is what a closed-loop run measured.
type loadResult struct {
	ok, errs int
	firstErr error
	elapsed  time.Duration
	lat      Summary
}

// rate is the successful calls per second.
func (l loadResult) rate() float64 {
	if l.elapsed <= 0 {
		return 0
	}
	return float64(l.ok) / l.elapsed.Seconds()
}

// closedLoop calls fn from workers goroutines, each making its next call
// when the previous one returns, until d has passed, ctx ends or every
// worker returned errDone. fn gets the worker's number and its call count.
// Each worker records its latencies apart, so recording costs no lock.
func closedLoop(ctx context.Context, workers int, d time.Duration, fn func(ctx context.Context, w, i int) error) loadResult {
	type tally struct {
		lat      []time.Duration
		errs     int
		firstErr error
	}
	tallies := make([]tally, workers)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[w]
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				err := fn(ctx, w, i)
				switch {
				case errors.Is(err, errDone):
					return
				case err != nil:
					t.errs++
					if t.firstErr == nil {
						t.firstErr = err
					}
				default:
					t.lat = append(t.lat, time.Since(t0))
				}
			}
		}()
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start)}
	var all []time.Duration
	for _, t := range tallies {
		all = append(all, t.lat...)
		res.errs += t.errs
		if res.firstErr == nil {
			res.firstErr = t.firstErr
		}
	}
	res.ok = len(all)
	res.lat = summarize(all)
	return res
}
