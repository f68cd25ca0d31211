// Command webapp is a small web app behind `tegata gate --web`: it checks
// passwords itself, hands each sign-in to the gate with one response header
// (X-Tegata-Login), and reads the signed-in user from the X-Tegata-*
// request headers the gate sets. It writes no cookie, refresh or CSRF code:
// the gate does all of that.
//
//	export TEGATA_DATA=${TMPDIR:-/tmp}/tegata-walkthrough/data  # keys outside the repository
//	tegata serve &
//	(umask 077; tegata apikeys create --name web --role gate > "$TEGATA_DATA/../gate-key")
//	TEGATA_GATE_KEY=$(cat "$TEGATA_DATA/../gate-key") tegata gate --authority http://127.0.0.1:8080 \
//	    --listen 127.0.0.1:8081 --upstream http://127.0.0.1:3000 --web --public /assets/ \
//	    --login-handoff-paths /login &
//	go run ./examples/webapp --listen 127.0.0.1:3000
//	# open http://127.0.0.1:8081/ and sign in as alice / wonderland
//
// It trusts X-Tegata-* headers because it listens on loopback, reachable
// only through the gate. The users and notes live in memory: a demo.
package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
)

// user is a demo account.
type user struct {
	password [32]byte // SHA-256: compared in constant time
	roles    []string
}

type app struct {
	users map[string]user
	mu    sync.Mutex
	notes map[string][]string
	log   *slog.Logger
}

func main() {
	listen := flag.String("listen", envOr("WEBAPP_LISTEN", "127.0.0.1:3000"), "listen address (env WEBAPP_LISTEN)")
	users := flag.String("users", envOr("WEBAPP_USERS", "alice:wonderland:editor,bob:builder:viewer"),
		"demo accounts, name:password:role+role,... (env WEBAPP_USERS)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	a, err := newApp(*users, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
	log.Info("webapp listening", "url", "http://"+ln.Addr().String())
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newApp(spec string, log *slog.Logger) (*app, error) {
	a := &app{users: map[string]user{}, notes: map[string][]string{}, log: log}
	for _, entry := range strings.Split(spec, ",") {
		parts := strings.Split(entry, ":")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("--users entry %q is not name:password:role+role", entry)
		}
		a.users[parts[0]] = user{password: sha256.Sum256([]byte(parts[1])), roles: strings.Split(parts[2], "+")}
	}
	return a, nil
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.loginForm)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("POST /notes", a.addNote)
	mux.HandleFunc("GET /assets/style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, style)
	})
	mux.HandleFunc("GET /{$}", a.home)
	return mux
}

// identity is who the gate says is signed in.
type identity struct {
	Subject string
	Roles   []string
}

func who(r *http.Request) (identity, bool) {
	id := identity{Subject: r.Header.Get("X-Tegata-Subject")}
	// Arrays arrive as compact JSON (docs/gate.md).
	_ = json.Unmarshal([]byte(r.Header.Get("X-Tegata-Claim-Roles")), &id.Roles)
	return id, id.Subject != ""
}

func (a *app) loginForm(w http.ResponseWriter, r *http.Request) {
	render(w, loginPage, map[string]any{"Next": safeNext(r.FormValue("next")), "Failed": r.FormValue("error") != ""})
}

// login checks the password and, if it matches, asks the gate to sign the
// browser in: the one line of tegata this app has.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	name, next := r.PostFormValue("user"), safeNext(r.PostFormValue("next"))
	u, ok := a.users[name]
	sum := sha256.Sum256([]byte(r.PostFormValue("password")))
	if !ok || subtle.ConstantTimeCompare(sum[:], u.password[:]) != 1 {
		http.Redirect(w, r, "/login?error=1&next="+template.URLQueryEscaper(next), http.StatusSeeOther)
		return
	}
	login, _ := json.Marshal(map[string]any{"subject": name, "claims": map[string]any{"roles": u.roles}})
	w.Header().Set("X-Tegata-Login", string(login))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Tegata-Logout", "session")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	id, ok := who(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	a.mu.Lock()
	notes := append([]string(nil), a.notes[id.Subject]...)
	a.mu.Unlock()
	render(w, homePage, map[string]any{"User": id, "Notes": notes})
}

func (a *app) addNote(w http.ResponseWriter, r *http.Request) {
	id, ok := who(r)
	if !ok {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	if note := strings.TrimSpace(r.PostFormValue("note")); note != "" {
		a.mu.Lock()
		a.notes[id.Subject] = append(a.notes[id.Subject], note)
		a.mu.Unlock()
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// safeNext keeps a redirect target on this site: a path, never "//host".
// Browsers drop tabs and newlines from a Location and read '\' as '/', so
// "/\t/evil.example" would become "//evil.example": any control character
// or backslash sends the user home instead.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsRune(next, '\\') || strings.ContainsFunc(next, unicode.IsControl) {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

func render(w http.ResponseWriter, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := t.Execute(w, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

const style = `body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}
input,button{font:inherit;padding:.4rem;margin:.2rem 0}label{display:block}`

var (
	loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title><link rel="stylesheet" href="/assets/style.css"></head>
<body><h1>Sign in</h1>
{{if .Failed}}<p id="error">Wrong user or password.</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="next" value="{{.Next}}">
<label>User <input id="user" name="user" autocomplete="username"></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>
<button id="signin" type="submit">Sign in</button>
</form></body></html>`))
	homePage = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Home</title><link rel="stylesheet" href="/assets/style.css"></head>
<body><h1>Hello, <span id="user">{{.User.Subject}}</span></h1>
<p>Roles: <span id="roles">{{range $i, $r := .User.Roles}}{{if $i}}, {{end}}{{$r}}{{end}}</span></p>
<p><a id="devices" href="/.tegata/devices">Your devices</a></p>
<h2>Notes</h2>
<ul id="notes">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="/notes"><input name="note" id="note"><button type="submit" id="add">Add</button></form>
<form method="post" action="/logout"><button type="submit" id="signout">Sign out</button></form>
</body></html>`))
)
