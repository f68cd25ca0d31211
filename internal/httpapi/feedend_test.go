package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// lockedBuffer is a log's output, written by the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestFeedStreamEndDoneBeforeItsClientSeesIt: when the client of a feed
// stream that the hub took over from net/http reads its answer's end, the
// stream's place under the stream caps is already free, why it ended is
// logged and its request is counted and timed in the HTTP metrics
// (feed.WithEndHook), though the handlers around the hub have not
// returned yet (held here): a verifier that reconnects at once is
// admitted under its key's cap, and a scrape finds the stream, as under
// net/http, which ends an answer only once every handler returned.
func TestFeedStreamEndDoneBeforeItsClientSeesIt(t *testing.T) {
	ctx := context.Background()
	a, key, hub, _ := startFeedHub(t, feed.HubConfig{})

	clk := testtime.NewClock(time.Unix(1_800_000_000, 0))
	reg := prometheus.NewRegistry()
	metrics, err := httpapi.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	release := make(chan struct{})
	srv := httptest.NewServer(httpapi.New(a, httpapi.Config{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Clock: clk, FeedMaxAge: time.Minute,
		Limits: httpapi.Limits{FeedStreamsPerKey: 1}, Instruments: metrics,
		Feed: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hub.ServeHTTP(w, r)
			<-release // the handlers around the hub return only after the checks below
		}),
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	get := func() *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/feed", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	resp := get()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Fatalf("GET /v1/feed = %d, Close %v; want 200 and the stream taken over from net/http", resp.StatusCode, resp.Close)
	}
	if _, err := feed.NewDecoder(resp.Body).Next(); err != nil {
		t.Fatalf("the stream's first event: %v", err)
	}
	clk.Add(time.Minute) // its maximum age
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("reading to the end of the answer: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, `reason="the stream reached its maximum age"`) {
		t.Errorf("when the client read the end, why the stream ended was not logged yet:\n%s", l)
	}
	if n, timed := feedRequests(t, reg); n != 1 || timed != 1 {
		t.Errorf(`when the client read the end, tegata_http_requests_total{route="GET /v1/feed",code="200"} = %v and the duration histogram's count %d, want 1 and 1`, n, timed)
	}
	if again := get(); again.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(again.Body)
		t.Errorf("reconnecting at once under a cap of one stream per key = %d %s, want 200", again.StatusCode, b)
	}
}

// TestFeedStreamOnNetHTTPEndsWithItsClient: a feed stream that net/http
// serves to the end (TLS here, HTTP/2 alike) ends as soon as its client
// goes away, freeing its place under the caps, though it writes nothing
// (no heartbeat falls due on the hub's stopped clock): its context
// follows the request's, which net/http ends when the client leaves.
func TestFeedStreamOnNetHTTPEndsWithItsClient(t *testing.T) {
	clk := testtime.NewClock(time.Unix(1_800_000_000, 0))
	a, key, hub, stopHub := startFeedHub(t, feed.HubConfig{Clock: clk})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewTLSServer(httpapi.New(a, httpapi.Config{Logger: quiet, Clock: clk,
		Limits: httpapi.Limits{FeedStreamsPerKey: 1}, Feed: hub}))
	// The hub's stop ends a stream the test failed to see end, which
	// Close waits for.
	t.Cleanup(func() { stopHub(); srv.Close() })
	get := func(ctx context.Context) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/feed", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		return srv.Client().Do(req)
	}
	ctx, leave := context.WithCancel(context.Background())
	resp, err := get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /v1/feed over TLS = %d, Close %v; want 200 on net/http's path", resp.StatusCode, resp.Close)
	}
	if _, err := feed.NewDecoder(resp.Body).Next(); err != nil {
		t.Fatalf("the stream's first event: %v", err)
	}
	leave()
	resp.Body.Close()
	testtime.EventuallyTrue(t, 10*time.Second, "a second stream under a cap of one, once the first one's client left", func() bool {
		resp, err := get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// startFeedHub starts a feed hub with cfg on a SQLite store until the
// test ends or stop is called, and returns the store's authority and a
// feed API key of it.
func startFeedHub(t *testing.T, cfg feed.HubConfig) (a *authority.Authority, key string, hub *feed.Hub, stop func()) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err = authority.New(ctx, st, bytes.Repeat([]byte{5}, authority.MasterKeySize), authority.Config{Issuer: "https://auth.test"})
	if err != nil {
		t.Fatal(err)
	}
	key = authority.NewAPIKey()
	if err := a.EnsureAPIKey(ctx, "feed-key", key, authority.RoleFeed, false); err != nil {
		t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	hub = feed.NewHub(st, cfg)
	hubCtx, stopHub := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- hub.Run(hubCtx) }()
	stop = sync.OnceFunc(func() { stopHub(); <-ran })
	t.Cleanup(stop)
	return a, key, hub, stop
}

// feedRequests returns the count of GET /v1/feed answered 200 and the
// count of the route's duration histogram, as a scrape of reg shows them.
func feedRequests(t *testing.T, reg *prometheus.Registry) (requests float64, timed uint64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] != "GET /v1/feed" {
				continue
			}
			switch mf.GetName() {
			case "tegata_http_requests_total":
				if labels["code"] == "200" {
					requests = m.GetCounter().GetValue()
				}
			case "tegata_http_request_duration_seconds":
				timed = m.GetHistogram().GetSampleCount()
			}
		}
	}
	return requests, timed
}

// TestDetachedFeedStreamCountedAtItsEnd: a feed stream that went on after
// its handlers returned (feed.WithDetachHook) is counted and timed in the
// HTTP metrics once, at its end, as under net/http, where a stream's
// handlers return at its end: not as they return, which is at its start.
func TestDetachedFeedStreamCountedAtItsEnd(t *testing.T) {
	ctx := context.Background()
	a, key, hub, _ := startFeedHub(t, feed.HubConfig{})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	clk := testtime.NewClock(time.Unix(1_800_000_000, 0))
	reg := prometheus.NewRegistry()
	metrics, err := httpapi.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(a, httpapi.Config{Logger: quiet, Clock: clk, FeedMaxAge: time.Minute, Instruments: metrics, Feed: hub})
	returned := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r)
		returned <- struct{}{} // every handler of the API has returned
	}))
	t.Cleanup(srv.Close)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/feed", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Fatalf("GET /v1/feed = %d, Close %v; want 200 and the stream taken over from net/http", resp.StatusCode, resp.Close)
	}
	if _, err := feed.NewDecoder(resp.Body).Next(); err != nil {
		t.Fatalf("the stream's first event: %v", err)
	}
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the API's handlers did not return while the stream was open")
	}
	if n, timed := feedRequests(t, reg); n != 0 || timed != 0 {
		t.Errorf(`with the stream open, tegata_http_requests_total{route="GET /v1/feed",code="200"} = %v and the duration histogram's count %d, want 0 and 0`, n, timed)
	}
	clk.Add(time.Minute) // its maximum age
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("reading to the end of the answer: %v", err)
	}
	if n, timed := feedRequests(t, reg); n != 1 || timed != 1 {
		t.Errorf(`once the stream ended, tegata_http_requests_total{route="GET /v1/feed",code="200"} = %v and the duration histogram's count %d, want 1 and 1`, n, timed)
	}
}
