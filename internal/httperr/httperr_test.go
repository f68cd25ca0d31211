package httperr

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestChallenge(t *testing.T) {
	tests := []struct {
		name, code, desc, want string
	}{
		{"no credential", "", "no token", `Bearer realm="tegata"`},
		{"invalid token", InvalidToken, "token revoked", `Bearer realm="tegata", error="invalid_token", error_description="token revoked"`},
		{"no description", InvalidToken, "", `Bearer realm="tegata", error="invalid_token"`},
		{"quotes and backslashes cannot break out", InvalidToken, `a "b" \c`, `Bearer realm="tegata", error="invalid_token", error_description="a  b   c"`},
		{"control and non-ASCII bytes are replaced", InsufficientScope, "x\r\ny\u00e9", `Bearer realm="tegata", error="insufficient_scope", error_description="x  y "`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Challenge(tt.code, tt.desc); got != tt.want {
				t.Errorf("Challenge(%q, %q) = %q, want %q", tt.code, tt.desc, got, tt.want)
			}
		})
	}
}

func TestRefuse(t *testing.T) {
	tests := []struct {
		name          string
		noCredential  bool
		wantChallenge string
	}{
		{"credential refused", false, `Bearer realm="tegata", error="invalid_token", error_description="token <expired>"`},
		{"no credential: bare challenge, same body", true, `Bearer realm="tegata"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Refuse(w, http.StatusUnauthorized, InvalidToken, "token <expired>", tt.noCredential)
			if w.Code != 401 || w.Header().Get("WWW-Authenticate") != tt.wantChallenge {
				t.Errorf("Refuse = %d %q, want 401 %q", w.Code, w.Header().Get("WWW-Authenticate"), tt.wantChallenge)
			}
			if ct, cc := w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
				t.Errorf("Content-Type, Cache-Control = %q, %q, want application/json, no-store", ct, cc)
			}
			if want := `{"error":"invalid_token","error_description":"token <expired>"}` + "\n"; w.Body.String() != want {
				t.Errorf("body = %q, want %q (text as it is, no HTML escapes)", w.Body.String(), want)
			}
			var b Body
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error != InvalidToken {
				t.Errorf("body decodes to %+v, %v", b, err)
			}
		})
	}
}
