package server_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/server"
)

// metric returns the value of the sample whose name and labels are
// exactly series in an exposition, or "" if there is none.
func metric(exposition, series string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(exposition)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestOperatorMetrics: with --metrics-addr the metrics leave the API
// listener for their own; they count theft detections and revocations by
// kind, carry the build and say the store writes. Every answer carries an
// X-Request-Id, which the log lines of the request carry too.
func TestOperatorMetrics(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.MetricsAddr = "127.0.0.1:0"; c.Authority.RefreshGrace = -1 })
	if e.MetricsURL == "" {
		t.Fatal("Running.MetricsURL is empty with MetricsAddr set")
	}
	res, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the API address = %d, want 404 with --metrics-addr", res.StatusCode)
	}

	stolen, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice", Device: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Refresh(ctx(t), stolen.RefreshToken); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if _, err := e.admin.Refresh(ctx(t), stolen.RefreshToken); err == nil {
		t.Fatal("Refresh(rotated token) succeeded, want reuse refused")
	}
	other, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "bob", Device: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: other.SessionID}); err != nil {
		t.Fatal(err)
	}

	m := get(t, e.MetricsURL+"/metrics")
	for _, tc := range []struct{ series, want string }{
		{"tegata_refresh_reuse_total", "1"},
		{`tegata_revocations_total{kind="theft"}`, "1"},
		{`tegata_revocations_total{kind="session"}`, "1"},
		{`tegata_revocations_total{kind="subject"}`, "0"},
		{"tegata_store_writable", "1"},
		{"tegata_store_write_errors_total", "0"},
	} {
		if got := metric(m, tc.series); got != tc.want {
			t.Errorf("%s = %q, want %s", tc.series, got, tc.want)
		}
	}
	if !regexp.MustCompile(`(?m)^tegata_build_info\{commit="[^"]+",version="[^"]+"\} 1$`).MatchString(m) {
		t.Error("no tegata_build_info{commit,version} 1")
	}
	if age := metric(m, "tegata_store_log_read_age_seconds"); age == "" || strings.HasPrefix(age, "-") {
		t.Errorf("tegata_store_log_read_age_seconds = %q, want a small non-negative age", age)
	}
	if strings.Contains(m, "alice") || strings.Contains(m, stolen.SessionID) {
		t.Error("metrics name a user or a session")
	}

	req, _ := http.NewRequest("POST", e.URL+"/v1/sessions/no-such-session/revoke", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+e.APIKey)
	req.Header.Set("X-Request-Id", "trace-0123")
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("X-Request-Id"); got != "trace-0123" {
		t.Errorf("X-Request-Id = %q, want the incoming trace-0123", got)
	}
	if !strings.Contains(e.logs.String(), "request_id=trace-0123") {
		t.Error("the request's log lines carry no request_id=trace-0123")
	}
}

// TestPprofOnMetricsListenerOnly: --pprof serves profiles on the metrics
// listener and nowhere else, and is refused without one.
func TestPprofOnMetricsListenerOnly(t *testing.T) {
	t.Parallel()
	if err := server.CheckSettings(server.Config{Pprof: true}); err == nil || !strings.Contains(err.Error(), "--metrics-addr") {
		t.Errorf("CheckSettings(Pprof without MetricsAddr) = %v, want an error naming --metrics-addr", err)
	}
	e := start(t, func(c *server.Config) { c.MetricsAddr = "127.0.0.1:0"; c.Pprof = true })
	if body := get(t, e.MetricsURL+"/debug/pprof/goroutine?debug=1"); !strings.Contains(body, "goroutine profile:") {
		t.Errorf("GET /debug/pprof/goroutine on the metrics address = %.80q, want a goroutine profile", body)
	}
	res, err := http.Get(e.URL + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/goroutine on the API address = %d, want 404", res.StatusCode)
	}
}
