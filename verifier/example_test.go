package verifier_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/tegata-dev/tegata/verifier"
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
		fmt.Fprintf(w, "orders of %s\n", claims.Subject)
	})
	http.Handle("/orders", v.Middleware(api))
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !v.State().Ready {
			http.Error(w, "not in sync with the authority", http.StatusServiceUnavailable)
		}
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
