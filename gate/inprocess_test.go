package gate_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

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
		fmt.Fprintf(w, "%s %v", c.Subject, c.Extra["plan"])
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
