package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestProcessGoroutinesLeavesOutIdleConnections is the chaos run's gate
// "leak" of seed 1: a gate restarted while ~250 revoked tokens were followed
// to it got ~250 concurrent probes, the harness's client kept every one of
// those connections idle, and the gate held a goroutine for each until its
// 2-minute idle timeout, so the resource bound read 242 goroutines in a gate
// holding ~25 of its own. The server here reports, like a Go server does,
// a goroutine for every open connection.
func TestProcessGoroutinesLeavesOutIdleConnections(t *testing.T) {
	const own, burst = 10, 50
	var open atomic.Int64
	var arrived sync.WaitGroup
	arrived.Add(burst)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE go_goroutines gauge\ngo_goroutines %d\n", own+open.Load())
	})
	mux.HandleFunc("GET /probe", func(w http.ResponseWriter, r *http.Request) {
		// Every probe waits for the others: the burst needs burst connections.
		arrived.Done()
		<-all
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	hc := newHTTPClient(256)
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() {
			resp, err := hc.Get(srv.URL + "/probe")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()

	settled, raw := processGoroutines(context.Background(), hc, []string{srv.URL, "http://127.0.0.1:1"})
	if raw[0] < own+burst {
		t.Fatalf("raw count %v: the burst's idle connections should be in it (at least %d)", raw[0], own+burst)
	}
	// The measuring connection itself stays open; the burst's must be gone.
	if settled[0] > own+burst/5 {
		t.Errorf("settled count %v, want about %d: the harness's idle connections are still counted", settled[0], own+1)
	}
	if settled[1] != -1 || raw[1] != -1 {
		t.Errorf("a process that does not answer: got %v, %v, want -1, -1", settled[1], raw[1])
	}
}
