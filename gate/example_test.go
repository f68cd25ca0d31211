package gate_test

import (
	"context"
	"log"
	"net/http"
	"net/url"
	"time"

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
	h := gate.New(v, gate.Config{Upstream: app, Claims: []string{"role"}})
	log.Fatal(http.ListenAndServe(":8081", h))
}
