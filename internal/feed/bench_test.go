package feed

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// stream encodes n subject entries as the hub sends them.
func stream(b testing.TB, n int) []byte {
	b.Helper()
	rec := httptest.NewRecorder()
	hub := NewHub(nil, HubConfig{Logger: quietLog()})
	c := &conn{hub: hub, w: rec, rc: http.NewResponseController(rec)}
	now := time.Now().Truncate(time.Microsecond)
	var lines arena
	for i := range n {
		e := revocation.Entry{Seq: int64(i + 1), Kind: revocation.KindSubject, Subject: fmt.Sprint("flood-", i),
			Generation: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		f, ok := newFrame(e, &lines)
		if !ok {
			b.Fatalf("newFrame(%+v) found no line", e)
		}
		c.frames = append(c.frames, f)
	}
	c.writeFrames(c.frames)
	return rec.Body.Bytes()
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
		s := (&Client{ApplyMany: set.ApplyMany, Logger: quietLog()}).follower()
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
