package main_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/testproc"
)

// gateStaleAfter is the staleness bound of the alert test's gates.
const gateStaleAfter = 3 * time.Second

// rulesFile is the alerting rules operators load.
const rulesFile = "../../deploy/prometheus/tegata-rules.yml"

// promtool returns the promtool binary (TEGATA_PROMTOOL, else on PATH; the
// Debian package prometheus ships it). Without it the test fails under
// CI=true and is skipped otherwise.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TEGATA_PROMTOOL"); p != "" {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found under CI=true (install Debian's prometheus package or set TEGATA_PROMTOOL)")
		}
		t.Skip("promtool not found (install Debian's prometheus package or set TEGATA_PROMTOOL)")
	}
	return p
}

// scrape reads a Prometheus text exposition: series (name{labels}, as
// written) to value; ok false when the target did not answer within 2 s,
// which Prometheus records as up 0.
func scrape(t *testing.T, base string) (map[string]float64, bool) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	res, err := c.Get(base + "/metrics")
	if err != nil {
		return nil, false
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: %q: %v", base, line, err)
		}
		out[line[:i]] = v
	}
	return out, res.StatusCode == http.StatusOK && sc.Err() == nil
}

// alertCase is one alert, with the scraped value of the series its rule
// reads before and after the test triggered its condition.
type alertCase struct {
	alert, series string
	before, after float64
	labels        map[string]string // the alert's labels besides alertname
}

// TestAlertRules triggers the condition of every alert in
// deploy/prometheus/tegata-rules.yml on real processes (an authority on
// SQLite and one on Postgres, two gates), scrapes their metrics before and
// after, and has promtool evaluate the rules on what was scraped: none
// fires on the values before, each fires on its series' value after, held
// (the conditions stay triggered) for its `for`. The value before is that
// of the same series before the trigger, except for the skew: that of the
// gate whose clock agrees.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	tool := promtool(t)
	if out, err := exec.Command(tool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	dir := t.TempDir()
	env := []string{"TEGATA_API_KEY=", "TEGATA_MASTER_KEY=", "TEGATA_FEED_KEY=" + testFeedKey, "TEGATA_RATE_LIMITS=off"}
	am := "http://" + freeAddr(t)
	a := serveArgs(t, dir, []string{"--metrics-addr", strings.TrimPrefix(am, "http://"), "--sqlite-max-size", "327680", "--refresh-grace", "0"}, env...)
	key, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	admin := &client.Client{BaseURL: a.URL(), APIKey: strings.TrimSpace(string(key))}
	// A store that does not answer: Postgres behind a connection cut now,
	// so that its log read ages while the other conditions are triggered.
	dsn, err := url.Parse(migrated.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	cut := tcpProxy(t, dsn.Host)
	dsn.Host = cut.addr
	bm := "http://" + freeAddr(t)
	serveArgs(t, t.TempDir(), []string{"--db", dsn.String(), "--metrics-addr", strings.TrimPrefix(bm, "http://")}, env...)
	bBefore, _ := scrape(t, bm)
	cut.cut()

	// The gates' staleness bound is short, so that the frozen and the stale
	// gate show in seconds what the default bound (10 s) shows in tens.
	gateEnv := []string{"TEGATA_FEED_KEY=" + testFeedKey, "TEGATA_API_KEY="}
	bound := "--stale-after=" + gateStaleAfter.String()
	g1m := "http://" + freeAddr(t)
	g1, g1url := startGate(t, gateEnv, "--authority", a.URL(), "--name", "edge-1", bound, "--metrics-listen", strings.TrimPrefix(g1m, "http://"))
	// The second gate reaches the authority through a proxy that dates
	// every answer two minutes early: what a gate whose clock runs two
	// minutes fast sees.
	skewed := skewProxy(t, a.URL(), -2*time.Minute)
	g2m := "http://" + freeAddr(t)
	startGate(t, gateEnv, "--authority", skewed, "--name", "edge-fast", bound, "--metrics-listen", strings.TrimPrefix(g2m, "http://"))
	poll(t, "edge-1 to be ready", func() bool { code, _ := get(t, g1url+"/readyz"); return code == 200 })
	// edge-fast answers 503 (its clock); its revocation state is current.
	poll(t, "edge-fast to be current", func() bool { m, _ := scrape(t, g2m); return m["tegata_gate_stale"] == 0 })
	poll(t, "the authority to list both gates as current", func() bool {
		m, _ := scrape(t, am)
		return m[`tegata_verifiers{state="current"}`] == 2
	})
	aBefore, _ := scrape(t, am)
	g1Before, _ := scrape(t, g1m)
	g2Before, _ := scrape(t, g2m)
	auth := func(severity string) map[string]string {
		return map[string]string{"instance": "authority", "job": "tegata", "severity": severity}
	}
	var cases []alertCase
	add := func(alert, series string, before, after map[string]float64, labels map[string]string) {
		cases = append(cases, alertCase{alert, series, before[series], after[series], labels})
	}

	// Theft: a rotated refresh token presented again.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := admin.CreateSession(ctx, client.SessionRequest{Subject: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Refresh(ctx, tok.RefreshToken); err == nil {
		t.Fatal("a reused refresh token was accepted")
	}
	aTheft, _ := scrape(t, am)
	add("TegataRefreshTokenReuse", "tegata_refresh_reuse_total", aBefore, aTheft, auth("warning"))

	// Skew: the gate behind the early-dating proxy.
	g2Skew, _ := scrape(t, g2m)
	add("TegataClockSkew", "tegata_gate_clock_skew_seconds", g1Before, g2Skew, map[string]string{"instance": "gate", "job": "tegata-gate", "severity": "warning"})

	// A full store: sessions until the 320 KiB cap refuses one.
	claims := map[string]any{"filler": strings.Repeat("x", 2000)}
	for i := 0; ; i++ {
		if _, err := admin.CreateSession(ctx, client.SessionRequest{Subject: fmt.Sprint("filler-", i), Claims: claims}); err != nil {
			break
		}
		if i == 2000 {
			t.Fatal("2000 sessions of 2 KB fit under --sqlite-max-size 320 KiB")
		}
	}
	aFull, _ := scrape(t, am)
	add("TegataStoreRefusesWrites", "tegata_store_writable", aBefore, aFull, auth("critical"))

	// A frozen gate: its scrape fails, and the authority counts it stale
	// once it has been silent a while, and goes on counting it once it has
	// dropped out of the listing (silent past its bound), for minutes; the
	// authority's metrics reuse a listing for up to 5 s, so the count
	// shows within the gate's bound and those seconds.
	if err := testproc.Freeze(g1.cmd.Process); err != nil {
		t.Fatal(err)
	}
	defer g1.cmd.Process.Signal(syscall.SIGCONT)
	_, g1Up := scrape(t, g1m)
	cases = append(cases, alertCase{"TegataGateDown", `up{instance="gate",job="tegata-gate"}`, 1, b2f(g1Up),
		map[string]string{"instance": "gate", "job": "tegata-gate", "severity": "critical"}})
	var aFrozen map[string]float64
	poll(t, "the authority to count the frozen gate stale", func() bool {
		aFrozen, _ = scrape(t, am)
		return aFrozen[`tegata_verifiers{state="stale"}`] > 0
	})
	add("TegataVerifierStale", `tegata_verifiers{state="stale"}`, aBefore, aFrozen, auth("warning"))

	// A stale gate: its authority stopped.
	stop(t, a)
	var g2Stale map[string]float64
	poll(t, "edge-fast to report stale", func() bool {
		g2Stale, _ = scrape(t, g2m)
		return g2Stale["tegata_gate_stale"] == 1
	})
	add("TegataGateStale", "tegata_gate_stale", g2Before, g2Stale, map[string]string{"instance": "gate", "job": "tegata-gate", "severity": "critical"})

	var bDown map[string]float64
	poll(t, "the authority cut off from Postgres to report an old log read", func() bool {
		bDown, _ = scrape(t, bm)
		return bDown["tegata_store_log_read_age_seconds"] > 11
	})
	add("TegataStoreDown", "tegata_store_log_read_age_seconds", bBefore, bDown, auth("critical"))

	evaluate(t, tool, cases)
	checkDashboard(t, aBefore, g1Before, bBefore)
}

// checkDashboard checks that every tegata_ metric the Grafana dashboard
// and the rules query is one the processes export.
func checkDashboard(t *testing.T, scrapes ...map[string]float64) {
	t.Helper()
	have := map[string]bool{}
	for _, m := range scrapes {
		for series := range m {
			if i := strings.IndexByte(series, '{'); i >= 0 {
				series = series[:i]
			}
			have[series] = true
		}
	}
	for _, f := range []string{"../../deploy/grafana/tegata.json", rulesFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range regexp.MustCompile(`tegata_[a-z_]+`).FindAllString(string(b), -1) {
			if !have[name] && !strings.HasPrefix(name, "tegata_gate_refusals") {
				t.Errorf("%s queries %s, which no authority or gate exports", f, name)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// evaluate writes the cases as a promtool unit test of the rules (their
// annotations left out: promtool compares them, and they quote values) and
// runs it.
func evaluate(t *testing.T, tool string, cases []alertCase) {
	t.Helper()
	dir := t.TempDir()
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), withoutAnnotations(string(rules)), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("rule_files: [rules.yml]\nevaluation_interval: 15s\ntests:\n")
	for _, c := range cases {
		t.Logf("%s: %s = %v before, %v after", c.alert, c.series, c.before, c.after)
		// Three minutes of the value before, then three of the value after.
		fmt.Fprintf(&b, "  - interval: 15s\n    input_series:\n      - series: '%s'\n        values: '%sx12 %sx12'\n",
			withLabels(c.series, c.labels), num(c.before), num(c.after))
		fmt.Fprintf(&b, "    alert_rule_test:\n      - eval_time: 3m\n        alertname: %s\n        exp_alerts: []\n", c.alert)
		fmt.Fprintf(&b, "      - eval_time: 6m\n        alertname: %s\n        exp_alerts:\n          - exp_labels: {%s}\n", c.alert, labelList(c))
	}
	if err := os.WriteFile(filepath.Join(dir, "test.yml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, "test", "rules", "test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s\ntest file:\n%s", err, out, b.String())
	}
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// withLabels adds the instance and job labels to a series as written in
// an exposition, unless it names them.
func withLabels(series string, labels map[string]string) string {
	if strings.Contains(series, "instance=") {
		return series
	}
	add := fmt.Sprintf(`instance="%s",job="%s"`, labels["instance"], labels["job"])
	if i := strings.IndexByte(series, '{'); i >= 0 {
		return series[:i+1] + add + "," + series[i+1:]
	}
	return series + "{" + add + "}"
}

// labelList is the labels the alert must carry: the series' labels (less
// the metric name, which an alert drops only through a function like abs)
// and the rule's.
func labelList(c alertCase) string {
	ls := map[string]string{}
	for k, v := range c.labels {
		ls[k] = v
	}
	s := withLabels(c.series, c.labels)
	if i := strings.IndexByte(s, '{'); i >= 0 {
		for _, kv := range regexp.MustCompile(`(\w+)="([^"]*)"`).FindAllStringSubmatch(s[i:], -1) {
			ls[kv[1]] = kv[2]
		}
	}
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %q", k, ls[k]))
	}
	return strings.Join(parts, ", ")
}

// withoutAnnotations drops every annotations: block of a rules file.
func withoutAnnotations(rules string) []byte {
	var out []string
	skip := -1
	for _, line := range strings.Split(rules, "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if skip >= 0 && (strings.TrimSpace(line) == "" || indent > skip) {
			continue
		}
		skip = -1
		if strings.TrimSpace(line) == "annotations:" {
			skip = indent
			continue
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n"))
}

// skewProxy is a reverse proxy to target whose answers are dated by a
// clock shift away from the real one.
func skewProxy(t *testing.T, target string, shift time.Duration) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.FlushInterval = -1                    // the feed is a stream
	p.ErrorLog = log.New(io.Discard, "", 0) // the authority stops before the proxy
	p.ModifyResponse = func(res *http.Response) error {
		res.Header.Set("Date", time.Now().Add(shift).UTC().Format(http.TimeFormat))
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// cutter is a TCP proxy whose connections can be cut, all at once and
// for good: a store the node can no longer reach.
type cutter struct {
	addr  string
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  bool
}

func tcpProxy(t *testing.T, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{addr: ln.Addr().String(), ln: ln}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			if !c.track(in, out) {
				continue
			}
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(c.cut)
	return c
}

func (c *cutter) track(conns ...net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		for _, x := range conns {
			x.Close()
		}
		return false
	}
	c.conns = append(c.conns, conns...)
	return true
}

// cut closes every connection and refuses new ones.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	c.ln.Close()
	for _, x := range c.conns {
		x.Close()
	}
}
