package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
)

// consoleUsers is how many users the console's search finds one among.
const consoleUsers = 10000

// consoleStack is tegata serve on Postgres with 10,000 users, and two
// gates following its feed.
type consoleStack struct {
	authority string
	admin     *client.Client
	gates     []*proc
}

func startConsoleStack(t *testing.T) *consoleStack {
	t.Helper()
	bins := buildCommands(t, "cmd/tegata")
	dir, dsn := t.TempDir(), migrated.Schema(t)
	serve := startProc(t, "tegata serve", bins["tegata"], []string{"TEGATA_API_KEY=", "TEGATA_MASTER_KEY=", "TEGATA_FEED_KEY="},
		"serve", "--addr", "127.0.0.1:0", "--data", dir, "--db", dsn)
	s := &consoleStack{authority: serve.wait(t, regexp.MustCompile(`listening url=(\S+)`), 60*time.Second)[1]}
	adminKey, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	s.admin = &client.Client{BaseURL: s.authority, APIKey: strings.TrimSpace(string(adminKey))}
	feed, err := s.admin.CreateAPIKey(context.Background(), client.APIKeyRequest{Name: "gates", Role: "feed"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gate-eu", "gate-us"} {
		g := startProc(t, name, bins["tegata"], []string{"TEGATA_FEED_KEY=" + feed.Key, "TEGATA_API_KEY="},
			"gate", "--authority", s.authority, "--listen", "127.0.0.1:0", "--name", name, "--stale-after", "2m")
		g.wait(t, regexp.MustCompile(`tegata gate ready`), 60*time.Second)
		s.gates = append(s.gates, g)
	}
	s.createUsers(t, dsn)
	return s
}

// createUsers puts consoleUsers-1 users with one device each straight into
// the database (10,000 API calls would take most of the test's time), then
// signs Grace Hopper in on two devices through the API.
func (s *consoleStack) createUsers(t *testing.T, dsn string) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := `CAST(extract(epoch FROM now()) * 1000000 AS BIGINT)`
	user := `'user' || lpad(CAST(g AS TEXT), 5, '0') || '@example.com'`
	for _, q := range []string{
		`INSERT INTO subjects (subject, generation) SELECT ` + user + `, 0 FROM generate_series(0, ` + fmt.Sprint(consoleUsers-2) + `) g`,
		`INSERT INTO sessions (id, subject, device, claims, created_at, refreshed_at, expires_at)
			SELECT 'seed-' || CAST(g AS TEXT), ` + user + `, 'Firefox on Linux', '{"roles":["viewer"]}', ` + now + `, ` + now + `,
				` + now + ` + 86400000000 FROM generate_series(0, ` + fmt.Sprint(consoleUsers-2) + `) g`,
	} {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("seeding users: %v", err)
		}
	}
	for _, dev := range []string{"Safari on iPhone", "Chrome on macOS"} {
		if _, err := s.admin.CreateSession(context.Background(), client.SessionRequest{Subject: "grace.hopper@example.com",
			Device: dev, Claims: map[string]any{"roles": []string{"viewer"}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConsoleBrowser: an operator in Chromium signs in to the console,
// finds a user among 10,000, signs one device out and watches the
// revocation reach both gates, changes the user's roles, reads the audit
// entry and exports it. Each page's screenshot is checked, and written to
// docs/ with -update-screenshot.
func TestConsoleBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	s := startConsoleStack(t)
	d := newDevice(t, newBrowser(t, exe), "operator", s.authority)
	if err := chromedp.Do(d.ctx, chromedp.EmulateViewport(1100, 760)); err != nil {
		t.Fatal(err)
	}

	if _, loc := d.open("/console/users"); !strings.HasPrefix(loc, "/console/login?next=%2Fconsole%2Fusers") {
		t.Fatalf("anonymous visit ended on %q, want the sign-in page", loc)
	}
	consoleShot(t, d, "login")
	if err := chromedp.Do(d.ctx, chromedp.SendKeys(chromedp.ID("key"), s.admin.APIKey)); err != nil {
		t.Fatal(err)
	}
	d.click(`button[type="submit"]`)
	if loc := d.location(); loc != "/console/users" {
		t.Fatalf("after signing in: on %q, want /console/users", loc)
	}

	if err := chromedp.Do(d.ctx, chromedp.SendKeys(chromedp.ID("q"), "grace")); err != nil {
		t.Fatal(err)
	}
	d.click(`form.search button`)
	if got := d.text("#results tbody"); !strings.Contains(got, "grace.hopper@example.com") || strings.Count(got, "@") != 1 {
		t.Fatalf("search grace among %d users = %q, want Grace alone", consoleUsers, got)
	}
	consoleShot(t, d, "users")
	d.click(`#results a.subject`)
	if got := d.eval(`String(document.querySelectorAll("#devices tbody tr").length)`); got != "2" {
		t.Fatalf("Grace's page shows %s devices, want 2", got)
	}
	consoleShot(t, d, "user")
	// On a phone's width the page fits: only the tables are wider, and
	// they scroll within their box.
	if err := chromedp.Do(d.ctx, chromedp.EmulateViewport(390, 800)); err != nil {
		t.Fatal(err)
	}
	if w := d.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
		t.Errorf("Grace's page on a 390 px wide screen is %s px wide", w)
	}
	if err := chromedp.Do(d.ctx, chromedp.EmulateViewport(1100, 760)); err != nil {
		t.Fatal(err)
	}
	sid := d.eval(`document.querySelector("#devices tbody tr td.mono").textContent`)

	// Sign one device out: the confirmation step, then the live
	// confirmation, naming the gate that does not hold it yet (frozen
	// with SIGSTOP, well within its staleness bound), until both do.
	d.click(`#devices tbody tr button.danger`)
	if err := chromedp.Do(d.ctx, chromedp.SendKeys(chromedp.ID("reason"), "phone lost")); err != nil {
		t.Fatal(err)
	}
	frozen := s.gates[1]
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	d.click(`#confirm`)
	ctx, cancel := context.WithTimeout(d.ctx, 60*time.Second)
	err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.getElementById("pending").textContent.includes("gate-us")`))
	cancel()
	if err != nil {
		t.Errorf("the confirmation never named the frozen gate pending: %v (status %q, pending %q)", err, d.text("#status"), d.text("#pending"))
	}
	consoleShot(t, d, "confirm-pending")
	if err := frozen.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitInForce(t, d, 2)
	if got := d.text("#pending"); got != "" {
		t.Errorf("once in force the page still names %q pending", got)
	}
	consoleShot(t, d, "confirm")

	// Change the roles.
	d.open("/console/user?sub=grace.hopper%40example.com")
	if got := d.eval(`String(document.querySelectorAll("#devices tbody tr").length)`); got != "1" {
		t.Errorf("after the sign-out Grace's page shows %s devices, want 1", got)
	}
	if err := chromedp.Do(d.ctx, chromedp.SetValue(chromedp.CSS(`#claims`), `{"roles": ["admin"]}`)); err != nil {
		t.Fatal(err)
	}
	d.click(`#change-claims`)
	d.click(`#confirm`)
	waitInForce(t, d, 2)

	// The audit entry, and its export.
	d.open("/console/audit?target=" + sid)
	if got := d.text("#audit-table tbody"); !strings.Contains(got, "session.revoke") || !strings.Contains(got, "phone lost") {
		t.Errorf("audit for %s = %q, want the sign-out with its reason", sid, got)
	}
	d.open("/console/audit")
	consoleShot(t, d, "audit")
	csv, err := chromedp.Run(d.ctx, chromedp.Evaluate[string](
		`fetch(document.getElementById("export-csv").href).then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("export CSV: %v", err)
	}
	if !strings.Contains(csv, sid) || !strings.Contains(csv, "subject.revoke") {
		t.Errorf("CSV export lacks the sign-out and the role change:\n%s", csv)
	}

	d.open("/console/verifiers")
	if err := chromedp.Do(d.ctx, chromedp.WaitVisible(chromedp.CSS(`#vupdated`)), chromedp.Poll[chromedp.Void](
		`document.getElementById("vupdated").textContent.startsWith("live") && document.querySelectorAll("#verifiers-table tbody tr").length == 2`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Errorf("the verifiers table did not go live with both gates: %v", err)
	}
	consoleShot(t, d, "verifiers")
	d.open("/console/")
	consoleShot(t, d, "overview")
	d.open("/console/keys")
	consoleShot(t, d, "keys")
}

// waitInForce waits on the confirmation page until its script shows the
// revocation in force on every verifier, and checks how many.
func waitInForce(t *testing.T, d *device, verifiers int) {
	t.Helper()
	if loc := d.location(); !strings.HasPrefix(loc, "/console/confirm?") {
		t.Fatalf("after confirming: on %q, want the confirmation page", loc)
	}
	ctx, cancel := context.WithTimeout(d.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#status.ok`))); err != nil {
		t.Fatalf("the revocation did not show in force: %v (status %q)", err, d.text("#status"))
	}
	if got, want := d.text("#status"), fmt.Sprintf("In force on every verifier (%d).", verifiers); got != want {
		t.Errorf("confirmation = %q, want %q", got, want)
	}
}

// consoleShot takes a screenshot of the page; it always checks the picture
// and with -update-screenshot writes it to docs/console-<name>.png.
func consoleShot(t *testing.T, d *device, name string) {
	t.Helper()
	buf, err := chromedp.Run(d.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil || img.Bounds().Dx() != 1100 {
		t.Fatalf("%s screenshot: %v (bounds %v), want a 1100 px wide PNG", name, err, img)
	}
	if *updateScreenshot {
		path := "../../docs/console-" + name + ".png"
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(buf))
	}
}
