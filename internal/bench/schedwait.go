package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// runQueue is how long the threads of some processes, together, waited
// for a CPU while ready to run (the kernel's run-queue delay) and how many
// times they were put on one, from /proc/<pid>/task/*/schedstat. A probe
// of a gate waits at least twice (the gate's thread woken by the request,
// the prober's by the answer), so a machine whose cores are all busy shows
// here before it shows in latency.
type runQueue struct {
	wait time.Duration
	runs int64
}

// sampleRunQueue sums the run-queue figures of pids' threads; zero where
// /proc or schedstat is missing. A thread that exits between two samples
// takes its share with it: Go runtimes rarely end threads.
func sampleRunQueue(pids []int) runQueue {
	var q runQueue
	for _, pid := range pids {
		tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "schedstat"))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			f := strings.Fields(string(b)) // on-CPU ns, run-queue ns, times run
			if len(f) < 3 {
				continue
			}
			w, _ := strconv.ParseInt(f[1], 10, 64)
			n, _ := strconv.ParseInt(f[2], 10, 64)
			q.wait += time.Duration(w)
			q.runs += n
		}
	}
	return q
}

// perRun is the mean wait for a CPU per time run between two samples.
func (q runQueue) perRun(before runQueue) time.Duration {
	n := q.runs - before.runs
	if n <= 0 {
		return 0
	}
	return (q.wait - before.wait) / time.Duration(n)
}

// share is the waiting time between two samples per second of wall time
// d: how many threads, on average, stood ready without a CPU.
func (q runQueue) share(before runQueue, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return (q.wait - before.wait).Seconds() / d.Seconds()
}
