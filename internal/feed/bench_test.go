package feed

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// stream encodes n subject entries as the hub sends a bulk revocation to
// a live connection: segments of the hub's batches (1,000 entries), each
// saying the log's head while more follow.
func stream(b testing.TB, n int) []byte {
	return bytes.Join(segmentsOf(b, n), nil)
}

// segmentsOf is stream's segments apart, as the hub writes them: one
// write each.
func segmentsOf(b testing.TB, n int) [][]byte {
	b.Helper()
	now := time.Now().Truncate(time.Microsecond)
	var lines arena
	var frames []frame
	for i := range n {
		e := revocation.Entry{Seq: int64(i + 1), Kind: revocation.KindSubject, Subject: fmt.Sprint("flood-", i),
			Generation: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		f, ok := newFrame(e, &lines)
		if !ok {
			b.Fatalf("newFrame(%+v) found no line", e)
		}
		frames = append(frames, f)
	}
	var segs [][]byte
	for from := 0; from < n; from += 1000 {
		to := min(from+1000, n)
		segs = append(segs, newSegment(int64(from), int64(to), frames[from:to], int64(n)).data)
	}
	return segs
}

// BenchmarkFollow measures what a verifier spends per entry of a burst:
// reading the stream, decoding, applying to a revocation set.
func BenchmarkFollow(b *testing.B) {
	const n = 10_000
	data := stream(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		set := revocation.NewSet(0)
		s := (&Client{ApplyMany: set.ApplyMany, Grow: set.Grow, Logger: quietLog()}).follower()
		d := NewDecoder(bytes.NewReader(data))
		for {
			ev, err := d.Next()
			if err != nil {
				break
			}
			if _, err := s.handle(ev); err != nil {
				b.Fatal(err)
			}
		}
		if set.Len() != n {
			b.Fatalf("set holds %d entries, want %d", set.Len(), n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
	b.ReportMetric(float64(len(data))/n, "B/entry")
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkHubEncode measures what a hub spends per entry it reads from the
// log, before any connection: encoding the entry's line once for all.
func BenchmarkHubEncode(b *testing.B) {
	hub := NewHub(nil, HubConfig{Logger: quietLog()})
	now := time.Now().Truncate(time.Microsecond)
	entries := make([]revocation.Entry, 1000)
	for i := range entries {
		entries[i] = revocation.Entry{Seq: int64(i + 1), Kind: revocation.KindSubject, Subject: fmt.Sprint("flood-", i),
			Generation: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	b.ReportAllocs()
	for b.Loop() {
		frames, _ := hub.encode(entries, 0)
		if len(frames) != len(entries) {
			b.Fatalf("encode() = %d frames, want %d", len(frames), len(entries))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(entries)), "ns/entry")
}

// BenchmarkFollowMany is BenchmarkFollow as a process running many
// verifiers sees it: a bulk revocation of 10,000 subject cutoffs reaches
// 500 followers, each with its own decoder and set, event by event and
// follower by follower in turn (each is cold when its turn comes). It
// reports the process's CPU time per entry per follower, which a busy
// machine does not inflate as it does wall time.
func BenchmarkFollowMany(b *testing.B) {
	const n, followers = 10_000, 500
	data := stream(b, n)
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		type fol struct {
			s   *follower
			d   *Decoder
			set *revocation.Set
		}
		fs := make([]fol, followers)
		for i := range fs {
			set := revocation.NewSet(0)
			fs[i] = fol{s: (&Client{ApplyMany: set.ApplyMany, Grow: set.Grow, Logger: quietLog()}).follower(), d: NewDecoder(bytes.NewReader(data)), set: set}
		}
		b.StartTimer()
		before := cpuTime()
		for live := len(fs); live > 0; {
			live = 0
			for _, f := range fs {
				ev, err := f.d.Next()
				if err == io.EOF {
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				live++
				if _, err := f.s.handle(ev); err != nil {
					b.Fatal(err)
				}
			}
		}
		cpu += cpuTime() - before
		for _, f := range fs {
			if f.set.Len() != n {
				b.Fatalf("set holds %d entries, want %d", f.set.Len(), n)
			}
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n*followers), "cpu-ns/entry")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
