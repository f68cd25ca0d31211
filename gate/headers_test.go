package gate

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/token"
	"github.com/tegata-dev/tegata/verifier"
	"github.com/tegata-dev/tegata/verifier/verifiertest"
)

func TestClaimHeaderName(t *testing.T) {
	tests := []struct {
		name, claim, want string
	}{
		{"simple", "role", "X-Tegata-Claim-Role"},
		{"underscore", "tenant_id", "X-Tegata-Claim-Tenant-Id"},
		{"camel case is folded", "orgId", "X-Tegata-Claim-Orgid"},
		{"namespaced URI", "https://example.com/roles", "X-Tegata-Claim-Https-Example-Com-Roles"},
		{"surrounding junk", "__x__", "X-Tegata-Claim-X"},
		{"non-ASCII dropped", "rôle", "X-Tegata-Claim-R-Le"},
		{"no letter or digit", "___", ""},
		{"CRLF cannot inject", "a\r\nSet-Cookie: x", "X-Tegata-Claim-A-Set-Cookie-X"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := claimHeaderName(tt.claim); got != tt.want {
				t.Errorf("claimHeaderName(%q) = %q, want %q", tt.claim, got, tt.want)
			}
		})
	}
}

func TestHeaderValue(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"plain string", "admin", "admin"},
		{"string with spaces inside", "read write", "read write"},
		{"empty string", "", `""`},
		{"leading space", " x", `" x"`},
		{"starts with quote", `"x"`, `"\"x\""`},
		{"control characters", "a\r\nb", `"a\r\nb"`},
		{"DEL", "a\x7fb", `"a\u007fb"`},
		{"DEL in an array", []any{"\x7f"}, `["\u007f"]`},
		{"non-ASCII", "café", `"caf\u00e9"`},
		{"string that reads as a number", "7", `"7"`},
		{"string that reads as a negative number", "-1", `"-1"`},
		{"string that reads as a boolean", "true", `"true"`},
		{"string that reads as null", "null", `"null"`},
		{"string that reads as an array", "[a]", `"[a]"`},
		{"string that reads as an object", "{a}", `"{a}"`},
		{"string that only begins with a letter of true", "trueish", "trueish"},
		{"beyond the BMP", "a😀", `"a\ud83d\ude00"`},
		{"integer", float64(42), "42"},
		{"fraction", 1.5, "1.5"},
		{"true", true, "true"},
		{"false", false, "false"},
		{"array", []any{"a", float64(1), "é"}, `["a",1,"\u00e9"]`},
		{"object", map[string]any{"b": []any{}, "a": "<&>"}, `{"a":"<&>","b":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claimsWith(t, map[string]any{"v": tt.v})
			if got, ok := claimHeaderValue(c, "v"); !ok || got != tt.want {
				t.Errorf("claimHeaderValue(%#v) = %q, %v, want %q, true", tt.v, got, ok, tt.want)
			}
		})
	}
}

// claimsWith returns verified claims carrying the application claims extra.
func claimsWith(t *testing.T, extra map[string]any) *verifier.Claims {
	t.Helper()
	return verified(t, token.Claims{Subject: "alice", Extra: extra})
}

// verified returns c, minted and verified by an in-process authority.
func verified(t *testing.T, c token.Claims) *verifier.Claims {
	t.Helper()
	auth := verifiertest.New(verifiertest.Config{})
	v, err := auth.Verifier().Verify(context.Background(), auth.Mint(c))
	if err != nil {
		t.Fatalf("Verify(minted) = %v", err)
	}
	return v
}

func TestStripSpoofed(t *testing.T) {
	h := http.Header{
		"X-Tegata-Subject":     {"mallory"},
		"X-Tegata-Claim-Admin": {"true"},
		"x-tegata-session":     {"s"}, // not canonical: set by hand, not by a parser
		"X_tegata_subject":     {"mallory"},
		"X-Tegata":             {"kept: no trailing dash"},
		"X-Tegatax-Foo":        {"kept"},
		"Authorization":        {"Bearer t"},
		"Cookie":               {"a=b"},
	}
	stripSpoofed(h)
	var got []string
	for k := range h {
		got = append(got, k)
	}
	slices.Sort(got)
	want := []string{"Authorization", "Cookie", "X-Tegata", "X-Tegatax-Foo"}
	if !slices.Equal(got, want) {
		t.Errorf("stripSpoofed left %q, want %q", got, want)
	}
}

func TestNewIdentity(t *testing.T) {
	claims := verified(t, token.Claims{Subject: "alice", SessionID: "s1", Extra: map[string]any{
		"role":      "admin",
		"tenant_id": float64(7),
		"groups":    []any{"a", "b"},
		"nothing":   nil,
		"tenant-id": "collides with tenant_id and sorts first",
		"big":       strings.Repeat("x", 100),
	}})
	tests := []struct {
		name   string
		cfg    Config
		want   map[string]string
		absent []string
		empty  []string // present with an empty value
	}{
		{
			name: "all claims",
			cfg:  Config{}.withDefaults(),
			want: map[string]string{
				HeaderSubject: "alice", HeaderSession: "s1",
				"X-Tegata-Claim-Role": "admin", "X-Tegata-Claim-Groups": `["a","b"]`,
				"X-Tegata-Claim-Tenant-Id": "collides with tenant_id and sorts first",
				"X-Tegata-Claim-Big":       strings.Repeat("x", 100),
			},
			absent: []string{"X-Tegata-Claim-Nothing", HeaderClaimsTruncated},
		},
		{
			name:   "selected claims",
			cfg:    Config{Claims: []string{"role", "missing", "nothing"}}.withDefaults(),
			want:   map[string]string{HeaderSubject: "alice", "X-Tegata-Claim-Role": "admin"},
			absent: []string{"X-Tegata-Claim-Groups"},
			empty:  []string{"X-Tegata-Claim-Missing", "X-Tegata-Claim-Nothing"},
		},
		{
			name:   "no claims",
			cfg:    Config{MaxClaimBytes: -1}.withDefaults(),
			want:   map[string]string{HeaderSubject: "alice"},
			absent: []string{"X-Tegata-Claim-Role", HeaderClaimsTruncated},
		},
		{
			name: "budget leaves out what does not fit and keeps going",
			// Room for groups (34 bytes) and role (28) but not big (122).
			cfg:    Config{MaxClaimBytes: 64}.withDefaults(),
			want:   map[string]string{"X-Tegata-Claim-Groups": `["a","b"]`, "X-Tegata-Claim-Role": "admin", HeaderClaimsTruncated: "true"},
			absent: []string{"X-Tegata-Claim-Big", "X-Tegata-Claim-Tenant-Id"},
		},
		{
			name:   "negative budget: no claim headers",
			cfg:    Config{MaxClaimBytes: -1}.withDefaults(),
			want:   map[string]string{HeaderSubject: "alice", HeaderSession: "s1"},
			absent: []string{"X-Tegata-Claim-Role", HeaderClaimsTruncated},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			newIdentity(claims, tt.cfg).apply(h)
			for k, v := range tt.want {
				if got := h.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tt.absent {
				if got, ok := h[k]; ok {
					t.Errorf("header %s = %q, want absent", k, got)
				}
			}
			for _, k := range tt.empty {
				if got := h[k]; len(got) != 1 || got[0] != "" {
					t.Errorf("header %s = %q, want one empty value", k, got)
				}
			}
		})
	}
}

func TestHeaderString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "alice"}, {"12345", "12345"}, {"-x", "-x"}, {"true", "true"},
		{"zoé", `"zo\u00e9"`}, {"", `""`}, {`"q"`, `"\"q\""`}, {" padded", `" padded"`},
	}
	for _, tt := range tests {
		if got := headerString(tt.in); got != tt.want {
			t.Errorf("headerString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
