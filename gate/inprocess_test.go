package gate_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/verifier"
)

// TestWebInProcess: Handler around a Go app's own mux, no proxy: the app
// signs in with SetLogin, reads the claims from the context and signs out
// with SetLogout; a handler that writes nothing still gets its cookies.
func TestWebInProcess(t *testing.T) {
	e := startWeb(t, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := gate.SetLogin(w.Header(), gate.Login{Subject: "pat", Claims: map[string]any{"plan": "pro"}, Device: "Pat's laptop"}); err != nil {
			t.Error(err)
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /touch", func(w http.ResponseWriter, r *http.Request) {}) // writes nothing
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		gate.SetLogout(w.Header(), false)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := verifier.FromContext(r.Context())
		if !ok {
			t.Error("FromContext on a signed-in request = false")
			return
		}
		fmt.Fprintf(w, "%s %v", c.Subject(), c.Copy().Extra["plan"])
	})
	app := httptest.NewServer(e.web.Handler(mux))
	t.Cleanup(app.Close)
	b := &browser{t: t, e: &webEnv{gate: app}, ua: firefoxUA, jar: map[string]string{}}

	if got := b.send("POST", "/login", true, nil); got.status != http.StatusSeeOther || got.cookies[gate.CookieAccess] == nil {
		t.Fatalf("in-process sign-in = %d cookies %v, want 303 with the session cookies", got.status, got.cookies)
	}
	if got := b.send("GET", "/", true, nil); got.status != 200 || string(got.body) != "pat pro" {
		t.Errorf("GET / = %d %q, want 200 \"pat pro\"", got.status, got.body)
	}
	b.setCookie(gate.CookieAccess, "")
	if got := b.send("POST", "/touch", true, nil); got.status != 200 || got.cookies[gate.CookieAccess] == nil {
		t.Errorf("a handler that writes nothing: %d cookies %v, want 200 with the refreshed cookies", got.status, got.cookies)
	}
	got := b.send("POST", "/logout", true, nil)
	if got.status != http.StatusNoContent {
		t.Fatalf("in-process logout = %d", got.status)
	}
	checkSignedOut(t, got)
	if ids := e.sessionIDs(t, "pat"); len(ids) != 0 {
		t.Errorf("pat's sessions after logout = %v, want none", ids)
	}
}

// TestWebRefreshSurvivesAbandonedRequest: a browser that goes away while
// the app works on a request for which the gate refreshed never receives
// the new cookies. When it comes back with the spent refresh token, past
// the authority's grace window, it gets the same successor from the
// gate's memory instead of losing its session as theft.
func TestWebRefreshSurvivesAbandonedRequest(t *testing.T) {
	e := startWeb(t, nil)
	entered, left := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := gate.SetLogin(w.Header(), gate.Login{Subject: "yan"}); err != nil {
			t.Error(err)
		}
		w.WriteHeader(http.StatusSeeOther)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // the browser went away
		close(left)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {})
	app := httptest.NewServer(e.web.Handler(mux))
	t.Cleanup(app.Close)
	b := &browser{t: t, e: &webEnv{gate: app}, ua: firefoxUA, jar: map[string]string{}}
	b.send("POST", "/login", true, nil)
	spent := b.cookie(gate.CookieRefresh)
	b.setCookie(gate.CookieAccess, "") // expired in the browser

	ctx, cancel := context.WithCancel(testContext(t))
	req, err := http.NewRequestWithContext(ctx, "GET", app.URL+"/slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: gate.CookieRefresh, Value: spent})
	req.AddCookie(&http.Cookie{Name: "__Host-tegata-bind", Value: b.cookie("__Host-tegata-bind")}) // the browser's binding cookie
	gone := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gone <- err
	}()
	<-entered // the gate has refreshed: spent is spent
	cancel()
	<-left
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("the abandoned request = %v, want it cancelled", err)
	}

	e.advance(t, time.Minute) // past the authority's grace window
	got := b.send("GET", "/", true, nil)
	if got.status != http.StatusOK || got.cookies[gate.CookieRefresh] == nil || b.cookie(gate.CookieRefresh) == spent {
		t.Fatalf("back with the spent refresh token = %d cookies %v, want 200 with the successor's cookies", got.status, got.cookies)
	}
	b.setCookie(gate.CookieAccess, "")
	if got := b.send("GET", "/", true, nil); got.status != http.StatusOK || got.cookies[gate.CookieRefresh] == nil {
		t.Fatalf("refreshing with the successor = %d cookies %v, want 200 and a refresh", got.status, got.cookies)
	}
	if ids := e.sessionIDs(t, "yan"); len(ids) != 1 {
		t.Errorf("yan's sessions = %v, want the session alive (not revoked as theft)", ids)
	}
}
