package feed

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRelayAuthorized: the relay takes its own key as a node takes a key
// (the scheme in any case, spaces before the key), and refuses its
// followers for the upstream only once every upstream refused its key in
// a row, as the client itself counts a key refused (WaitOpened): one node
// behind on a key, or one refusal among nodes that are merely down, is
// not a refused key.
func TestRelayAuthorized(t *testing.T) {
	r := NewRelay(RelayConfig{URLs: []string{"http://a.test", "http://b.test"}, APIKey: "k"})
	for _, tc := range []struct {
		name     string
		header   string
		refusals int
		want     int
	}{
		{"own key", "Bearer k", 0, http.StatusOK},
		{"scheme in lower case", "bearer k", 0, http.StatusOK},
		{"spaces before the key", "Bearer   k", 0, http.StatusOK},
		{"no key", "", 0, http.StatusUnauthorized},
		{"other key", "Bearer x", 0, http.StatusUnauthorized},
		{"other scheme", "Basic k", 0, http.StatusUnauthorized},
		{"one of two upstreams refused", "Bearer k", 1, http.StatusOK},
		{"both upstreams refused", "Bearer k", 2, http.StatusUnauthorized},
	} {
		r.client.update(func(st *State) {
			st.Refusals, st.RefusedErr = tc.refusals, nil
			if tc.refusals > 0 {
				st.RefusedErr = fmt.Errorf("%w: 401", ErrRefused)
			}
		})
		req := httptest.NewRequest(http.MethodGet, Path, nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		w := httptest.NewRecorder()
		got := http.StatusOK
		if !r.authorized(w, req) {
			got = w.Code
		}
		if got != tc.want {
			t.Errorf("%s: authorized = %d, want %d", tc.name, got, tc.want)
		}
	}
}
