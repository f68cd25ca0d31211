package revocation

import (
	"fmt"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkApplyBulk applies a bulk revocation of 10,000 subject cutoffs to
// 500 sets, event by event and set by set in turn, as a process running
// many verifiers does (each set is cold when its turn comes): entry by
// entry (Apply), and with ApplyMany in events of 256 to 2,048 entries, the
// sets made room for the whole bulk first (Grow, as a follower told of it
// by the feed does) or not. It reports the process's CPU time per entry
// per set, which a busy machine does not inflate as it does wall time, and
// the heap the sets hold per entry once the bulk is in (their tables, past
// what they held empty).
func BenchmarkApplyBulk(b *testing.B) {
	const subjects, sets = 10_000, 500
	exp := t0.Add(time.Hour)
	es := make([]Entry, subjects)
	for i := range es {
		es[i] = subject(int64(i+1), fmt.Sprint("fanout-bulk-", i), 1, exp)
	}
	for _, c := range []struct {
		name       string
		event      int
		many, grow bool
	}{{"Apply/256", 256, false, false}, {"ApplyMany/256", 256, true, false}, {"ApplyMany/1000", 1000, true, false},
		{"ApplyMany/2048", 2048, true, false}, {"Grow/ApplyMany/1000", 1000, true, true}} {
		b.Run(c.name, func(b *testing.B) {
			var cpu time.Duration
			var held uint64
			for b.Loop() {
				b.StopTimer()
				ss := make([]*Set, sets)
				for i := range ss {
					ss[i] = NewSet(0)
				}
				empty := heapInUse()
				b.StartTimer()
				before := cpuTime()
				if c.grow {
					for _, s := range ss {
						s.Grow(KindSubject, subjects)
					}
				}
				for ev := range slices.Chunk(es, c.event) {
					for _, s := range ss {
						applyEvent(b, s, ev, c.many)
					}
				}
				cpu += cpuTime() - before
				b.StopTimer()
				held += heapInUse() - empty
				runtime.KeepAlive(ss)
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*subjects*sets), "cpu-ns/entry")
			b.ReportMetric(float64(held)/float64(b.N*subjects*sets), "B/entry")
		})
	}
}

func applyEvent(b *testing.B, s *Set, es []Entry, many bool) {
	if many {
		if _, err := s.ApplyMany(es); err != nil {
			b.Fatal(err)
		}
		return
	}
	for _, e := range es {
		if err := s.Apply(e); err != nil {
			b.Fatal(err)
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
