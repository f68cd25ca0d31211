package gate_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/gate"
)

// TestForwardingHeaderUnderscoreSpellingsDropped: forwarding headers a
// client sends never reach the upstream, in any spelling, since servers
// that merge '_' and '-' (wsgiref, older gunicorn, Puma) read
// X_Forwarded_Host as X-Forwarded-Host; the gate's own X-Forwarded-For,
// -Host and -Proto do.
func TestForwardingHeaderUnderscoreSpellingsDropped(t *testing.T) {
	a := startAuthority(t)
	v := newVerifier(t, a.URL, a.APIKey, nil, nil)
	waitReady(t, v)
	app := startEcho(t)
	g := startGate(t, v, gate.Config{Upstream: app.url(t)})
	tok := a.signIn(t, "carol", nil)
	forged := map[string]string{
		"X_Forwarded_Host":  "evil.example",
		"X_Forwarded_For":   "10.9.9.9",
		"X_Forwarded_Proto": "https",
		"x_forwarded_port":  "8443",
		"X-Forwarded-Ssl":   "on",
		"X-Forwarded-Port":  "8443",
		"X_Real_Ip":         "10.9.9.9",
		"X-Real-Ip":         "10.9.9.9",
		"Forwarded":         "for=10.9.9.9;host=evil.example",
	}
	h := bearer(tok.AccessToken)
	for k, val := range forged {
		h[k] = []string{val}
	}
	got := doRaw(t, g.URL, "/items", h)
	if got.status != http.StatusOK {
		t.Fatalf("GET /items = %d %s, want 200", got.status, got.body)
	}
	var e echoed
	if err := json.Unmarshal(got.body, &e); err != nil {
		t.Fatal(err)
	}
	for name, vs := range e.Header {
		for _, val := range vs {
			if strings.Contains(val, "evil.example") || strings.Contains(val, "10.9.9.9") || val == "8443" || val == "on" {
				t.Errorf("upstream saw %s = %q, want the client's forwarding header dropped", name, val)
			}
		}
	}
	host := strings.TrimPrefix(g.URL, "http://")
	for name, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": host, "X-Forwarded-Proto": "http"} {
		if got := e.Header.Get(name); got != want {
			t.Errorf("upstream saw %s = %q, want %q (set by the gate)", name, got, want)
		}
	}
}
