package bench

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Summary is the distribution of a set of latencies, in milliseconds.
type Summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// summarize sorts ds in place and returns its nearest-rank percentiles.
func summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	slices.Sort(ds)
	return Summary{N: len(ds), P50: ms(percentile(ds, 0.50)), P90: ms(percentile(ds, 0.90)),
		P99: ms(percentile(ds, 0.99)), Max: ms(ds[len(ds)-1])}
}

// percentile returns the nearest-rank p-quantile of sorted ds.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// recorder collects latencies from many goroutines.
type recorder struct {
	mu sync.Mutex
	ds []time.Duration
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.ds = append(r.ds, d)
	r.mu.Unlock()
}

// take returns the latencies recorded so far and starts afresh.
func (r *recorder) take() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	ds := r.ds
	r.ds = nil
	return ds
}
