package verifiertest_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/tegata-dev/tegata/verifier"
	"github.com/tegata-dev/tegata/verifier/verifiertest"
)

// A handler behind the middleware, called by a DPoP client (RFC 9449): the
// session is bound to the client's key, and each request carries a fresh
// proof for its method and URL. The same token without a proof is refused.
func ExampleAuthority_DPoPProof() {
	auth := verifiertest.New(verifiertest.Config{PublicURL: "https://api.example"})
	h := auth.Verifier().Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.FromContext(r.Context())
		fmt.Fprint(w, "hello ", c.Subject())
	}))

	_, key, _ := ed25519.GenerateKey(rand.Reader) // the client's DPoP key
	s := auth.CreateDPoPSession("alice", nil, key.Public())

	send := func(proof string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "https://api.example/orders", nil)
		r.Header.Set("Authorization", "DPoP "+s.AccessToken)
		if proof != "" {
			r.Header.Set("DPoP", proof)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := send(auth.DPoPProof(key, "POST", "https://api.example/orders", s.AccessToken))
	fmt.Println(s.TokenType, w.Code, w.Body)
	w = send("")
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	// Output:
	// DPoP 200 hello alice
	// 401 DPoP algs="ES256 EdDSA Ed25519", error="invalid_dpop_proof", error_description="DPoP proof missing or invalid"
}
