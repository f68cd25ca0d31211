package server_test

import (
	"io"
	"net/http"
	"regexp"
	"testing"
)

// TestMetricsPerServer: each server counts its own requests, also when two
// run in one process (no package-global collectors).
func TestMetricsPerServer(t *testing.T) {
	t.Parallel()
	a, b := start(t, nil), start(t, nil)
	for range 3 {
		get(t, a.URL+"/healthz")
	}
	get(t, b.URL+"/healthz")
	re := regexp.MustCompile(`tegata_http_requests_total\{code="200",route="GET /healthz"\} (\d+)`)
	for _, tc := range []struct {
		name, url, want string
	}{{"a", a.URL, "3"}, {"b", b.URL, "1"}} {
		m := re.FindStringSubmatch(get(t, tc.url+"/metrics"))
		if m == nil || m[1] != tc.want {
			t.Errorf("server %s: healthz count = %v, want %s", tc.name, m, tc.want)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, %v", url, resp.StatusCode, err)
	}
	return string(b)
}
