package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/testtime"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the devices page screenshot to docs/web-devices.png")

const iPhoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"

// screenshotPath is where docs/web.md expects the devices page picture.
const screenshotPath = "../../docs/web-devices.png"

// chromium finds Debian's Chromium, or skips (fails under CI=true).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found and CI=true: install it (apt-get install -y chromium)")
	}
	t.Skip("chromium not found on PATH; install it (apt-get install -y chromium) to run the browser test")
	return ""
}

// webStack is the real binaries: tegata serve, the demo app, tegata gate
// --web in front of it.
type webStack struct {
	authority, gate string
	admin           *client.Client
	gateLog         *proc
}

func startWebStack(t *testing.T) *webStack {
	t.Helper()
	bins := buildCommands(t, "cmd/tegata", "examples/webapp")
	dir := t.TempDir()
	serve := startProc(t, "tegata serve", bins["tegata"], []string{"TEGATA_API_KEY=", "TEGATA_MASTER_KEY=", "TEGATA_FEED_KEY="},
		"serve", "--addr", "127.0.0.1:0", "--data", dir)
	s := &webStack{authority: serve.wait(t, regexp.MustCompile(`listening url=(\S+)`), 60*time.Second)[1]}
	adminKey, err := os.ReadFile(filepath.Join(dir, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	s.admin = &client.Client{BaseURL: s.authority, APIKey: strings.TrimSpace(string(adminKey))}

	// The gate's key, made the way docs/web.md says.
	cmd := exec.Command(bins["tegata"], "apikeys", "create", "--name", "web", "--role", "gate")
	cmd.Env = append(os.Environ(), "TEGATA_AUTHORITY="+s.authority, "TEGATA_API_KEY="+s.admin.APIKey)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tegata apikeys create --role gate: %v", err)
	}
	gateKey := strings.TrimSpace(string(out))

	app := startProc(t, "webapp", bins["webapp"], nil, "--listen", "127.0.0.1:0")
	appURL := app.wait(t, regexp.MustCompile(`webapp listening" url=(\S+)`), 30*time.Second)[1]
	s.gateLog = startProc(t, "tegata gate", bins["tegata"], []string{"TEGATA_GATE_KEY=" + gateKey, "TEGATA_FEED_KEY="},
		"gate", "--authority", s.authority, "--listen", "127.0.0.1:0", "--upstream", appURL,
		"--web", "--public", "/assets/", "--login-handoff-paths", "/login")
	s.gate = "http://" + s.gateLog.wait(t, regexp.MustCompile(`tegata gate listening" addr=(\S+)`), 60*time.Second)[1]
	s.gateLog.wait(t, regexp.MustCompile(`tegata gate ready`), 30*time.Second)
	return s
}

// waitGatePosition waits until the gate has applied the revocation log up
// to seq (its /readyz says so).
func (s *webStack) waitGatePosition(t *testing.T, seq int64) {
	t.Helper()
	testtime.Eventually(t, 10*time.Second, fmt.Sprintf("the gate to apply revocation %d", seq), func() error {
		resp, err := http.Get(s.gate + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var st struct {
			Position int64 `json:"position"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return err
		}
		if st.Position < seq {
			return fmt.Errorf("position %d", st.Position)
		}
		return nil
	})
}

// browsers holds a place for each Chromium running: the browser tests run
// in parallel with the others, two Chromiums at a time. A Chromium spends
// most of its start (seconds) waiting, not computing, so a second one
// overlaps the first's waits; more would contend for CI's two cores while
// they render.
var browsers = make(chan struct{}, 2)

// newBrowser starts headless Chromium with a fresh profile, as root-safe
// and quiet as the machine needs (no sandbox, no GPU, no network of its
// own), with extra options, and returns the context of its first tab. It
// waits for a place in browsers, held until the test's cleanup has closed
// the browser; a test starts one browser at most.
func newBrowser(t *testing.T, exe string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	browsers <- struct{}{}
	t.Cleanup(func() { <-browsers })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.UserDataDir(t.TempDir()), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-sync", true))
	opts = append(opts, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// device is one browser context: its own cookies, like another device.
type device struct {
	t    *testing.T
	name string
	ctx  context.Context
	gate string
}

func newDevice(t *testing.T, browser context.Context, name, gate string) *device {
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	return &device{t: t, name: name, ctx: ctx, gate: gate}
}

// open navigates to a gate path and returns the final response (after
// redirects) and the URL the browser ended on.
func (d *device) open(path string) (*network.Response, string) {
	d.t.Helper()
	resp, err := chromedp.Run(d.ctx, chromedp.NavigateResponse(d.gate+path))
	if err != nil {
		d.t.Fatalf("%s: open %s: %v", d.name, path, err)
	}
	return resp, d.location()
}

func (d *device) location() string {
	d.t.Helper()
	loc, err := chromedp.Run(d.ctx, chromedp.Location())
	if err != nil {
		d.t.Fatalf("%s: location: %v", d.name, err)
	}
	return strings.TrimPrefix(loc, d.gate)
}

func (d *device) text(sel string) string {
	d.t.Helper()
	s, err := chromedp.Run(d.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		d.t.Fatalf("%s: text of %s: %v", d.name, sel, err)
	}
	return strings.TrimSpace(s)
}

func (d *device) eval(js string) string {
	d.t.Helper()
	s, err := chromedp.Run(d.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		d.t.Fatalf("%s: eval %s: %v", d.name, js, err)
	}
	return s
}

// click clicks and waits for the page that follows to load; it returns the
// response to the navigation the click caused.
func (d *device) click(sel string) *network.Response {
	d.t.Helper()
	resp, err := chromedp.RunResponse(d.ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		d.t.Fatalf("%s: click %s: %v", d.name, sel, err)
	}
	return resp
}

// signIn goes through the gate to the app's login form and signs in.
func (d *device) signIn(user, password string) {
	d.t.Helper()
	if _, loc := d.open("/"); !strings.HasPrefix(loc, "/login?next=%2F") {
		d.t.Fatalf("%s: anonymous visit to / ended on %q, want the login page with next=/", d.name, loc)
	}
	err := chromedp.Do(d.ctx, chromedp.SendKeys(chromedp.ID("user"), user), chromedp.SendKeys(chromedp.ID("password"), password))
	if err != nil {
		d.t.Fatal(err)
	}
	d.click("#signin")
	if loc, who := d.location(), d.text("#user"); loc != "/" || who != user {
		d.t.Fatalf("%s: after signing in: on %q as %q, want / as %s", d.name, loc, who, user)
	}
}

// devices returns the device rows of the devices page: text, and whether
// it is this device.
func (d *device) devices() []string {
	d.t.Helper()
	if resp, loc := d.open("/.tegata/devices"); resp.Status != 200 || loc != "/.tegata/devices" {
		d.t.Fatalf("%s: devices page = %d on %q", d.name, resp.Status, loc)
	}
	raw := d.eval(`JSON.stringify([...document.querySelectorAll("li")].map(li => li.innerText.replace(/\s+/g, " ")))`)
	var rows []string
	if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		d.t.Fatal(err)
	}
	return rows
}

// TestWebBrowser: web sessions end to end, with the real authority, gate
// and demo app driven by headless Chromium as two devices.
func TestWebBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	s := startWebStack(t)
	browser := newBrowser(t, exe)
	laptop := newDevice(t, browser, "laptop", s.gate)
	phone := newDevice(t, browser, "phone", s.gate)

	laptop.signIn("alice", "wonderland")
	if roles := laptop.text("#roles"); roles != "editor" {
		t.Errorf("laptop shows roles %q, want editor", roles)
	}

	// The cookies are there, HttpOnly, and page JavaScript cannot read them.
	cookies, err := chromedp.Call(laptop.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, c := range cookies.Cookies {
		if strings.HasPrefix(c.Name, "__Host-tegata-") {
			found++
			if !c.HTTPOnly || !c.Secure || c.Path != "/" || c.SameSite != network.CookieSameSiteLax {
				t.Errorf("cookie %s: HttpOnly=%v Secure=%v Path=%q SameSite=%q, want HttpOnly, Secure, /, Lax", c.Name, c.HTTPOnly, c.Secure, c.Path, c.SameSite)
			}
		}
	}
	if found != 3 {
		t.Errorf("the browser holds %d __Host-tegata-* cookies, want 3 (access, refresh, binding)", found)
	}
	if js := laptop.eval("document.cookie"); strings.Contains(js, "tegata") {
		t.Errorf("page JavaScript reads document.cookie = %q, want no session cookie in it", js)
	}

	// The phone says it is one, so the devices list tells them apart.
	_, err = chromedp.Call(phone.ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: iPhoneUA})
	if err != nil {
		t.Fatal(err)
	}
	phone.signIn("alice", "wonderland")
	rows := laptop.devices()
	if len(rows) != 2 || !strings.Contains(rows[0], "Chrome on Linux") || !strings.Contains(rows[0], "This device") ||
		!strings.Contains(rows[1], "Safari on iPhone") || strings.Contains(rows[1], "This device") {
		t.Fatalf("laptop's devices page lists %q, want two devices, one of them this device", rows)
	}
	saveScreenshot(t, laptop)

	// Sign the phone out from the laptop: the row without "This device".
	clicked := laptop.eval(`(() => { const li = [...document.querySelectorAll("li")].find(li => !li.querySelector(".this"));
		li.querySelector("form").setAttribute("id", "other"); return li.innerText; })()`)
	if resp := laptop.click("#other button"); resp.Status != 200 {
		t.Fatalf("signing the other device out = %d", resp.Status)
	}
	if rows := laptop.devices(); len(rows) != 1 || !strings.Contains(rows[0], "This device") {
		t.Fatalf("after signing %q out, the laptop lists %q, want only itself", clicked, rows)
	}
	if _, loc := phone.open("/"); !strings.HasPrefix(loc, "/login?next=%2F") {
		t.Errorf("the signed-out phone's next visit ended on %q, want the login page", loc)
	}

	// A role change through the admin API: scope=access with new claims.
	rev, err := s.admin.RevokeSubject(browser, client.SubjectRevocation{Subject: "alice", Scope: "access", Reason: "promoted", Claims: map[string]any{"roles": []string{"admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	s.waitGatePosition(t, rev.Entry.Seq)
	if _, loc := laptop.open("/"); loc != "/" || laptop.text("#roles") != "admin" {
		t.Errorf("after the role change the laptop is on %q with roles %q, want / with admin and no new sign-in", loc, laptop.text("#roles"))
	}

	// A form on another origin posting to the app is refused; the same form
	// on the app's own page works.
	evil := startEvilSite(t, s.gate)
	if _, err := chromedp.Run(laptop.ctx, chromedp.NavigateResponse(evil)); err != nil {
		t.Fatal(err)
	}
	if resp := laptop.click("#go"); resp.Status != http.StatusForbidden || !strings.Contains(laptop.text("body"), "cross-origin request refused") {
		t.Errorf("cross-origin form post = %d %q, want 403 cross-origin request refused", resp.Status, laptop.text("body"))
	}
	laptop.open("/")
	if err := chromedp.Do(laptop.ctx, chromedp.SendKeys(chromedp.ID("note"), "buy milk")); err != nil {
		t.Fatal(err)
	}
	laptop.click("#add")
	if notes := laptop.text("#notes"); notes != "buy milk" {
		t.Errorf("notes = %q, want only the same-origin note \"buy milk\" (the forged one refused)", notes)
	}

	// Sign out: back at the login page, and signed out for good.
	if resp := laptop.click("#signout"); !strings.HasPrefix(laptop.location(), "/login") || resp.Status != 200 {
		t.Errorf("sign out ended on %q (%d), want the login page", laptop.location(), resp.Status)
	}
	if _, loc := laptop.open("/"); !strings.HasPrefix(loc, "/login?next=%2F") {
		t.Errorf("after signing out, / ended on %q, want the login page", loc)
	}
	if list, err := s.admin.Sessions(browser, "alice"); err != nil || len(list) != 0 {
		t.Errorf("alice's sessions at the end = %+v, %v, want none", list, err)
	}
}

// startEvilSite serves a page on another origin (same site: 127.0.0.1 on
// another port, so SameSite=Lax still sends the cookie) with a form that
// posts a note to the app.
func startEvilSite(t *testing.T, gate string) string {
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/notes"><input name="note" value="pwned">
<button id="go" type="submit">Win a prize</button></form>`, gate)
	}))
	t.Cleanup(evil.Close)
	return evil.URL
}

// saveScreenshot takes the devices page at a phone's width. It always
// checks the picture; with -update-screenshot it replaces the one in docs/.
func saveScreenshot(t *testing.T, d *device) {
	t.Helper()
	err := chromedp.Do(d.ctx, chromedp.EmulateViewport(390, 600))
	if err != nil {
		t.Fatal(err)
	}
	buf, err := chromedp.Run(d.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil || img.Bounds().Dx() != 390 {
		t.Fatalf("devices page screenshot: %v (bounds %v), want a 390 px wide PNG", err, img)
	}
	if *updateScreenshot {
		if err := os.WriteFile(screenshotPath, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", screenshotPath, len(buf))
	}
}
