package gate_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/gate"
)

// upgrade is what a browser sends to open a WebSocket.
var upgrade = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}

// switchRaw answers an upgrade request as a WebSocket server does
// (gorilla/websocket): it hijacks the connection and writes its own 101,
// with the extra header lines, then closes.
func switchRaw(t *testing.T, w http.ResponseWriter, extra string) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("Hijack: %v", err)
		return
	}
	defer conn.Close()
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + extra + "\r\n"); err != nil {
		t.Errorf("writing the 101: %v", err)
	}
	if err := brw.Flush(); err != nil {
		t.Errorf("writing the 101: %v", err)
	}
}

// switchGate is a gate --web in front of an upstream that answers an
// upgrade request with a raw 101 carrying the request's Test-Login as
// X-Tegata-Login, and anything else as webApp does. served receives the
// path of each request once the gate's handler has returned (and done
// whatever it does when an answer ends).
type switchGate struct {
	*browser
	served chan string
}

func startSwitchGate(t *testing.T, e *webEnv) *switchGate {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			e.app.Config.Handler.ServeHTTP(w, r)
			return
		}
		var extra string
		if l := r.Header.Get("Test-Login"); l != "" {
			extra = gate.HeaderLogin + ": " + l + "\r\n" + gate.HeaderLogout + ": everywhere\r\n"
		}
		switchRaw(t, w, extra)
	}))
	t.Cleanup(up.Close)
	h, err := gate.New(e.v, gate.Config{Upstream: parseURL(t, up.URL), Web: e.web, Logger: e.logs.logger()})
	if err != nil {
		t.Fatalf("gate.New: %v", err)
	}
	sg := &switchGate{served: make(chan string, 100)}
	g := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		sg.served <- r.URL.Path
	}))
	t.Cleanup(g.Close)
	sg.browser = &browser{t: t, e: &webEnv{gate: g}, ua: firefoxUA, jar: map[string]string{}}
	return sg
}

// waitServed waits until the gate has finished with a request to path.
func (sg *switchGate) waitServed(t *testing.T, path string) {
	t.Helper()
	for {
		select {
		case p := <-sg.served:
			if p == path {
				return
			}
		case <-testContext(t).Done():
			t.Fatalf("the gate never finished with %s", path)
		}
	}
}

// TestWebUpgradeRefreshSetsCookies: a WebSocket handshake through the gate
// whose access token needed a refresh gets the new cookies on the
// upstream's 101 (httputil.ReverseProxy writes it after hijacking, not
// through WriteHeader), so the browser does not keep the spent refresh
// token and its next refresh, past the grace window, is not taken as theft.
func TestWebUpgradeRefreshSetsCookies(t *testing.T) {
	e := startWeb(t, nil)
	sg := startSwitchGate(t, e)
	b := sg.browser
	b.login("uma", nil)
	oldRT := b.cookie(gate.CookieRefresh)
	b.setCookie(gate.CookieAccess, "")

	got := b.send("GET", "/ws", false, upgrade)
	if got.status != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade = %d %s, want 101", got.status, got.body)
	}
	at, rt := got.cookies[gate.CookieAccess], got.cookies[gate.CookieRefresh]
	if at == nil || rt == nil || rt.Value == oldRT || got.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("the 101 after a refresh set cookies %v, Cache-Control %q; want both new ones, no-store",
			got.header.Values("Set-Cookie"), got.header.Get("Cache-Control"))
	}
	e.advance(t, time.Minute) // past the authority's grace window
	b.setCookie(gate.CookieAccess, "")
	if next := b.send("GET", "/home", true, nil); next.status != http.StatusOK || next.cookies[gate.CookieRefresh] == nil {
		t.Fatalf("the next refresh with the 101's cookies = %d cookies %v, want 200 and a refresh", next.status, next.cookies)
	}
	if ids := e.sessionIDs(t, "uma"); len(ids) != 1 {
		t.Errorf("uma's sessions = %v, want the session alive (not revoked as theft)", ids)
	}
}

// TestWebUpgradeHandoffIgnored: X-Tegata-Login or -Logout in a 101 never
// reaches the browser and is never carried out, neither when the upstream
// sends it (the proxy writes the 101 itself) nor when an in-process app
// sets it and switches on the raw connection, nor when the connection
// later closes.
func TestWebUpgradeHandoffIgnored(t *testing.T) {
	e := startWeb(t, nil)
	t.Run("proxied", func(t *testing.T) {
		sg := startSwitchGate(t, e)
		b := sg.browser
		b.login("val", nil)
		got := b.send("GET", "/ws", false, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
			"Test-Login": {`{"subject":"mallory"}`}})
		sg.waitServed(t, "/ws")
		if got.status != http.StatusSwitchingProtocols || got.header.Get(gate.HeaderLogin) != "" || got.header.Get(gate.HeaderLogout) != "" {
			t.Errorf("upgrade = %d with %s %q, %s %q; want 101 without them", got.status,
				gate.HeaderLogin, got.header.Get(gate.HeaderLogin), gate.HeaderLogout, got.header.Get(gate.HeaderLogout))
		}
		if ids := e.sessionIDs(t, "mallory"); len(ids) != 0 {
			t.Errorf("a 101 naming mallory created sessions %v, want none", ids)
		}
		if ids := e.sessionIDs(t, "val"); len(ids) != 1 {
			t.Errorf("val's sessions after a 101 saying logout everywhere = %v, want the session kept", ids)
		}
		if !strings.Contains(e.logs.String(), "on a protocol switch (101) is ignored") {
			t.Errorf("the ignored handoff is not logged:\n%s", e.logs.String())
		}
	})
	t.Run("in-process", func(t *testing.T) {
		done := make(chan struct{}, 1)
		app := httptest.NewServer(e.web.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := gate.SetLogin(w.Header(), gate.Login{Subject: "mallory"}); err != nil {
				t.Error(err)
			}
			switchRaw(t, w, "")
		})))
		t.Cleanup(app.Close)
		wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			app.Config.Handler.ServeHTTP(w, r)
			done <- struct{}{}
		}))
		t.Cleanup(wrapped.Close)
		b := &browser{t: t, e: &webEnv{gate: wrapped}, ua: firefoxUA, jar: map[string]string{}}
		got := b.send("GET", "/about/ws", false, upgrade) // public: anonymous may switch
		<-done
		if got.status != http.StatusSwitchingProtocols {
			t.Errorf("in-process upgrade = %d, want 101", got.status)
		}
		if ids := e.sessionIDs(t, "mallory"); len(ids) != 0 {
			t.Errorf("an in-process app's login on a hijacked connection created sessions %v, want none", ids)
		}
	})
}

// TestWebInProcessUpgradeNeedsNormalRefresh: in-process, an upgrade request
// whose access token must be refreshed is answered 401 without refreshing
// (a WebSocket library may write its 101 on the raw connection, where the
// cookies would be lost); a normal request refreshes, and the upgrade then
// passes. A token near expiry but still valid is used as it is.
func TestWebInProcessUpgradeNeedsNormalRefresh(t *testing.T) {
	e := startWeb(t, nil)
	var switched atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := gate.SetLogin(w.Header(), gate.Login{Subject: "wes"}); err != nil {
			t.Error(err)
		}
		w.WriteHeader(http.StatusSeeOther)
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		switched.Add(1)
		switchRaw(t, w, "")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {})
	app := httptest.NewServer(e.web.Handler(mux))
	t.Cleanup(app.Close)
	b := &browser{t: t, e: &webEnv{gate: app}, ua: firefoxUA, jar: map[string]string{}}
	b.send("POST", "/login", true, nil)
	rt := b.cookie(gate.CookieRefresh)

	b.setCookie(gate.CookieAccess, "")
	got := b.send("GET", "/ws", false, upgrade)
	if got.status != http.StatusUnauthorized || len(got.cookies) != 0 || switched.Load() != 0 {
		t.Fatalf("in-process upgrade needing a refresh = %d cookies %v (app reached %d times); want 401, cookies kept, app not reached",
			got.status, got.cookies, switched.Load())
	}
	if b.cookie(gate.CookieRefresh) != rt {
		t.Fatal("the refresh cookie changed on a refused upgrade")
	}
	if got := b.send("GET", "/", true, nil); got.status != http.StatusOK || got.cookies[gate.CookieRefresh] == nil {
		t.Fatalf("normal request = %d cookies %v, want 200 with a refresh", got.status, got.cookies)
	}
	if got := b.send("GET", "/ws", false, upgrade); got.status != http.StatusSwitchingProtocols || switched.Load() != 1 {
		t.Fatalf("upgrade after the refresh = %d, want 101", got.status)
	}

	e.advance(t, accessTTL-gate.RefreshBefore+5*time.Second) // valid, but due for a refresh
	if got := b.send("GET", "/ws", false, upgrade); got.status != http.StatusSwitchingProtocols || len(got.cookies) != 0 {
		t.Errorf("upgrade with a token near expiry = %d cookies %v, want 101 on the token as it is", got.status, got.cookies)
	}
	if ids := e.sessionIDs(t, "wes"); len(ids) != 1 {
		t.Errorf("wes's sessions = %v, want one", ids)
	}
}

// TestWebEarlyHintsAndTrailersCarryNoHandoff: X-Tegata-Login never leaves
// the gate in a 103 Early Hints or in a trailer, and neither signs anyone
// in; an in-process app's header set before a 103 still works on its final
// answer.
func TestWebEarlyHintsAndTrailersCarryNoHandoff(t *testing.T) {
	e := startWeb(t, nil)
	app := func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		login := r.Header.Get("Test-Login")
		h.Set(gate.HeaderLogin, `{"subject":"mallory"}`)
		h.Set("Link", "</app.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del(gate.HeaderLogin)
		if login != "" {
			h.Set(gate.HeaderLogin, login)
		}
		h.Set("Trailer", gate.HeaderLogin+", X-Tegata-Logout")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "hello")
		h.Set(gate.HeaderLogin, `{"subject":"mallory"}`)
		h.Set(gate.HeaderLogout, "everywhere")
		h.Set(http.TrailerPrefix+"x-tegata-login", `{"subject":"mallory"}`)
	}
	up := httptest.NewServer(http.HandlerFunc(app))
	t.Cleanup(up.Close)
	proxied := startGate(t, e.v, gate.Config{Upstream: parseURL(t, up.URL), Web: e.web})
	inProcess := httptest.NewServer(e.web.Handler(http.HandlerFunc(app)))
	t.Cleanup(inProcess.Close)

	for _, tt := range []struct {
		name string
		url  string
	}{{"proxied", proxied.URL}, {"in-process", inProcess.URL}} {
		t.Run(tt.name, func(t *testing.T) {
			var hints []http.Header
			req, err := http.NewRequestWithContext(testContext(t), "GET", tt.url+"/about", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Test-Login", `{"subject":"xia"}`)
			req = req.WithContext(withGot1xx(req.Context(), func(code int, h http.Header) { hints = append(hints, h) }))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if _, err := io.ReadAll(resp.Body); err != nil {
				t.Fatal(err)
			}
			if len(hints) != 1 || hints[0].Get("Link") == "" {
				t.Fatalf("1xx answers = %v, want one 103 with its Link", hints)
			}
			for name := range hints[0] {
				if strings.HasPrefix(strings.ToLower(name), "x-tegata-") {
					t.Errorf("the 103 carried %s: %q", name, hints[0].Values(name))
				}
			}
			for name := range resp.Trailer {
				if strings.HasPrefix(strings.ToLower(name), "x-tegata-") {
					t.Errorf("a trailer %s reached the client: %q", name, resp.Trailer.Values(name))
				}
			}
			if resp.StatusCode != http.StatusOK || len(resp.Cookies()) == 0 {
				t.Errorf("final answer = %d cookies %v, want 200 signing xia in", resp.StatusCode, resp.Cookies())
			}
		})
	}
	if ids := e.sessionIDs(t, "mallory"); len(ids) != 0 {
		t.Errorf("a 103 or a trailer naming mallory created sessions %v, want none", ids)
	}
	if ids := e.sessionIDs(t, "xia"); len(ids) != 2 {
		t.Errorf("xia's sessions = %v, want two (the final answers' logins)", ids)
	}
}

// withGot1xx has f called with each informational answer to a request
// made with ctx.
func withGot1xx(ctx context.Context, f func(code int, h http.Header)) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		f(code, http.Header(h).Clone())
		return nil
	}})
}
