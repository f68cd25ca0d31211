package verifier_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/verifier"
	"github.com/tegata-dev/tegata/verifier/verifiertest"
)

// An app backend protects its API with tokens from a tegata authority: it
// follows the authority's key set and revocation feed, and rejects revoked
// tokens within milliseconds of their revocation, without a network call
// per request.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{
		Authorities: []string{"https://auth-1.internal", "https://auth-2.internal"},
		APIKey:      os.Getenv("TEGATA_FEED_KEY"), // a key with the feed role
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	// Serve only once the revocation set has caught up with the authority;
	// until then every token would be refused as stale.
	if err := v.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}

	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := verifier.FromContext(r.Context())
		fmt.Fprintf(w, "orders of %s\n", claims.Subject())
	})
	http.Handle("/orders", v.Middleware(api))
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !v.State().Ready {
			http.Error(w, "not in sync with the authority", http.StatusServiceUnavailable)
		}
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// The middleware in front of an app's handlers, tried out with the test
// kit: a valid token reaches the handler with its claims, a revoked one is
// refused at once, a route can require a role.
func ExampleVerifier_Middleware() {
	auth := verifiertest.New(verifiertest.Config{}) // in production: verifier.New
	v := auth.Verifier()

	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := verifier.FromContext(r.Context())
		fmt.Fprintf(w, "orders of %s", claims.Subject())
	})
	mux := http.NewServeMux()
	mux.Handle("/orders", v.Middleware(orders))
	mux.Handle("/admin", v.Middleware(verifier.RequireClaim("roles", "admin")(orders)))

	get := func(path, token string) {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(path, w.Code, strings.TrimSpace(w.Body.String()))
	}
	alice := auth.CreateSession("alice", map[string]any{"roles": []string{"editor"}})
	get("/orders", alice.AccessToken)
	get("/admin", alice.AccessToken)
	auth.RevokeSession(alice.SessionID) // alice signs out
	get("/orders", alice.AccessToken)
	// Output:
	// /orders 200 orders of alice
	// /admin 403 {"error":"insufficient_scope","error_description":"insufficient claims"}
	// /orders 401 {"error":"invalid_token","error_description":"token revoked"}
}

// Options: a browser app behind the gate's web sessions sends its token in
// a cookie; a page that serves everyone shows more to a signed-in user; a
// browser that must sign in is sent to the login page rather than shown a
// 401.
func ExampleTokenCookie() {
	auth := verifiertest.New(verifiertest.Config{})
	home := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if claims, ok := verifier.FromContext(r.Context()); ok {
			fmt.Fprintf(w, "hello %s", claims.Subject())
			return
		}
		fmt.Fprint(w, "hello stranger")
	})
	h := auth.Verifier().Middleware(home,
		verifier.TokenCookie("__Host-tegata-at"),
		verifier.AllowAnonymous(),
		verifier.OnError(func(w http.ResponseWriter, r *http.Request, err error) {
			http.Redirect(w, r, "/login?why="+url.QueryEscape(verifier.Reason(err)), http.StatusSeeOther)
		}))

	get := func(cookie string) {
		r := httptest.NewRequest("GET", "/", nil)
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: "__Host-tegata-at", Value: cookie})
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if loc := w.Header().Get("Location"); loc != "" {
			fmt.Println(w.Code, loc)
			return
		}
		fmt.Println(w.Code, w.Body.String())
	}
	s := auth.CreateSession("bob", nil)
	get(s.AccessToken)
	get("")
	auth.Advance(time.Hour) // the access token expires
	get(s.AccessToken)
	// Output:
	// 200 hello bob
	// 200 hello stranger
	// 303 /login?why=token+expired
}

// Application claims read into a struct of the app's own.
func ExampleClaims_Decode() {
	auth := verifiertest.New(verifiertest.Config{})
	s := auth.CreateSession("carol", map[string]any{"roles": []string{"editor", "billing"}, "tenant_id": "t-9"})
	claims, err := auth.Verifier().Verify(context.Background(), s.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	var app struct {
		Subject string   `json:"sub"`
		Roles   []string `json:"roles"`
		Tenant  string   `json:"tenant_id"`
	}
	if err := claims.Decode(&app); err != nil {
		log.Fatal(err)
	}
	fmt.Println(app.Subject, app.Roles, app.Tenant, claims.Has("roles", "billing"))
	// Output: carol [editor billing] t-9 true
}
