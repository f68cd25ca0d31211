package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/client"
)

// TestAPIKeyTrimmed: a key read from a file or a Kubernetes secret (with a
// trailing newline) is sent without it; one with "Bearer " in front is
// refused before anything is sent.
func TestAPIKeyTrimmed(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	c := &client.Client{BaseURL: srv.URL, APIKey: "tgk_abc\n"}
	if _, err := c.APIKeys(context.Background()); err != nil || got != "Bearer tgk_abc" {
		t.Errorf("APIKeys() sent Authorization %q (%v), want %q", got, err, "Bearer tgk_abc")
	}
	got = ""
	c.APIKey = "Bearer tgk_abc"
	if _, err := c.APIKeys(context.Background()); err == nil || !strings.Contains(err.Error(), "Bearer") || got != "" {
		t.Errorf("APIKeys() with a Bearer-prefixed key = %v (sent %q), want an error before sending", err, got)
	}
}
