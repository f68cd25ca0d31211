package gate

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"time"

	"github.com/tegata-dev/tegata/internal/httperr"
)

// devicesStyle is the page's only style. The Content-Security-Policy admits
// it by hash: the page loads nothing and runs no script.
const devicesStyle = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f5f5f7;color:#1d1d1f;line-height:1.4}
main{max-width:36rem;margin:0 auto;padding:1.5rem 1rem}
h1{font-size:1.6rem;margin:0 0 .25rem}
.who{color:#555;margin:0 0 1.25rem}
ul{list-style:none;padding:0;margin:0 0 1.5rem}
li{background:#fff;border-radius:.75rem;padding:1rem;margin-bottom:.75rem;display:flex;gap:1rem;align-items:center;justify-content:space-between;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.name{font-weight:600;overflow-wrap:anywhere}
.this{display:inline-block;font-size:.75rem;font-weight:600;background:#e3f1e6;color:#1e6b34;border-radius:1rem;padding:.1rem .55rem;margin-left:.35rem}
.when{font-size:.85rem;color:#666}
.bound{color:#1e6b34}
form{margin:0}
button{font:inherit;font-size:.95rem;padding:.55rem .9rem;border-radius:.5rem;border:1px solid #c7c7cc;background:#fff;cursor:pointer;min-height:2.75rem;white-space:nowrap}
button.all{width:100%;border-color:#c9302c;color:#c9302c}
a{color:#0a58ca}
`

var (
	devicesCSP = "default-src 'none'; style-src 'sha256-" + hashStyle(devicesStyle) + "'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	devicesTemplate = template.Must(template.New("devices").Funcs(template.FuncMap{"stamp": stamp}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your devices</title>
<style>{{.Style}}</style>
</head>
<body>
<main>
<h1>Your devices</h1>
<p class="who">Signed in as <strong>{{.Subject}}</strong>. Sign out any device you do not recognise.</p>
<ul>
{{- range .Sessions}}
<li>
<div>
<div class="name">{{.Device}}{{if .Current}}<span class="this">This device</span>{{end}}</div>
<div class="when">Signed in {{stamp .CreatedAt}}<br>Last active {{stamp .LastRefreshedAt}}{{if .Binding}}<br><span class="bound">Device-bound ({{.Binding}})</span>{{end}}</div>
</div>
<form method="post" action="/.tegata/sessions/{{.ID}}/revoke"><button type="submit">Sign out</button></form>
</li>
{{- end}}
</ul>
<form method="post" action="/.tegata/logout-everywhere"><button type="submit" class="all">Sign out everywhere</button></form>
<p><a href="/">Back</a></p>
</main>
</body>
</html>
`))
)

func hashStyle(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func stamp(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }

// devicesPage answers GET /.tegata/devices: the user's sessions as a page
// that works without JavaScript, loads nothing from elsewhere and reads on
// a phone. Each "Sign out" is a same-origin form post, which the
// cross-origin check lets through.
func (w *Web) devicesPage(h *handoff, r *http.Request) {
	list, err := w.sessions(r.Context(), h.claims)
	if err != nil {
		w.unavailable(h, r, "list sessions", err)
		return
	}
	var buf bytes.Buffer
	err = devicesTemplate.Execute(&buf, struct {
		Style    template.CSS
		Subject  string
		Sessions []sessionEntry
	}{template.CSS(devicesStyle), h.claims.Subject(), list})
	if err != nil {
		w.log.ErrorContext(r.Context(), "gate: devices page", "err", err)
		httperr.Write(h, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	hdr := h.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Security-Policy", devicesCSP)
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	h.WriteHeader(http.StatusOK)
	_, _ = h.Write(buf.Bytes())
}
