package gate_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/verifier"
)

// A reverse proxy that lets only requests with a valid, unrevoked token
// through to an app on port 3000, which reads the caller from
// X-Tegata-Subject.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{
		Authorities: []string{"http://auth.internal:8080"},
		APIKey:      "feed key",
		Audience:    "myapp",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	app, _ := url.Parse("http://127.0.0.1:3000")
	h, err := gate.New(v, gate.Config{Upstream: app, Claims: []string{"role"}})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(":8081", h))
}

// A Go app that keeps its browser sessions with tegata in-process: it
// checks passwords itself, hands the sign-in to the middleware with one
// header, and reads the signed-in user from the request context.
func ExampleWeb_Handler() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const authority = "http://auth.internal:8080"
	gateKey := "a key with role gate" // tegata apikeys create --name web --role gate
	v, err := verifier.New(ctx, verifier.Config{Authorities: []string{authority}, APIKey: gateKey})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	web, err := gate.NewWeb(v, gate.WebConfig{
		Authority: &client.Client{BaseURL: authority, APIKey: gateKey},
		Public:    []string{"/login", "/assets/"},
	})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user, ok := checkPassword(r.PostFormValue("user"), r.PostFormValue("password"))
		if !ok {
			http.Error(w, "wrong user or password", http.StatusUnauthorized)
			return
		}
		_ = gate.SetLogin(w.Header(), gate.Login{Subject: user, Claims: map[string]any{"roles": []string{"editor"}}})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		gate.SetLogout(w.Header(), false)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.FromContext(r.Context()) // always set here: "/" is not public
		roles, _ := c.Claim("roles")
		fmt.Fprintf(w, "hello %s, roles %v", c.Subject(), roles)
	})
	log.Fatal(http.ListenAndServeTLS(":8443", "cert.pem", "key.pem", web.Handler(mux)))
}

// checkPassword stands for the app's own credential check.
func checkPassword(user, password string) (string, bool) { return user, password != "" }
