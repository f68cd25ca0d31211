package token

import (
	"testing"
	"time"
)

// verified returns sampleClaims as Verify hands them out: signed, parsed.
func verified(t *testing.T) *Claims {
	t.Helper()
	keys := testKeys(t)
	raw, err := Sign(keys.edSigner(), sampleClaims())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(raw, keys.keySet(t), testExpect(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClaimsDecode(t *testing.T) {
	var app struct {
		Subject string   `json:"sub"`
		Expiry  int64    `json:"exp"`
		Roles   []string `json:"roles"`
		Scope   string   `json:"scope"`
		Org     struct {
			ID   string `json:"id"`
			Tier int    `json:"tier"`
		} `json:"org"`
		Quota float64 `json:"quota"`
	}
	for _, tc := range []struct {
		name   string
		claims *Claims
	}{
		{"verified", verified(t)},
		{"built by hand", func() *Claims { c := sampleClaims(); return &c }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app.Roles = nil
			if err := tc.claims.Decode(&app); err != nil {
				t.Fatalf("Decode = %v", err)
			}
			if app.Subject != "user-42" || app.Expiry != tc.claims.Expiry.Unix() || len(app.Roles) != 2 || app.Roles[1] != "editor" ||
				app.Scope != "read write" || app.Org.ID != "org-1" || app.Org.Tier != 2 || app.Quota != 12.5 {
				t.Errorf("Decode = %+v, want the claims of sampleClaims", app)
			}
		})
	}
	var wrong struct {
		Roles string `json:"roles"`
	}
	if err := verified(t).Decode(&wrong); err == nil {
		t.Error("Decode(roles into a string) = nil, want an error")
	}
}

func TestClaimsHas(t *testing.T) {
	c := verified(t)
	tests := []struct {
		name, claim, value string
		want               bool
	}{
		{"array member", "roles", "editor", true},
		{"not a member", "roles", "owner", false},
		{"string equal", "nick", `"quoted" \ é` + "\u2028 <tag> \x01", true},
		{"string prefix is not equal", "nick", `"quoted"`, false},
		{"missing claim", "groups", "x", false},
		{"not a string", "admin", "true", false},
		{"scope is not split by Has", "scope", "read", false},
	}
	for _, tt := range tests {
		if got := c.Has(tt.claim, tt.value); got != tt.want {
			t.Errorf("%s: Has(%q, %q) = %v, want %v", tt.name, tt.claim, tt.value, got, tt.want)
		}
	}
	scopes := []struct {
		scopes []string
		want   bool
	}{
		{[]string{"read"}, true},
		{[]string{"write", "read"}, true},
		{[]string{"read", "admin"}, false},
		{[]string{"rea"}, false},
		{nil, true},
	}
	for _, tt := range scopes {
		if got := c.HasScope(tt.scopes...); got != tt.want {
			t.Errorf("HasScope(%q) = %v, want %v", tt.scopes, got, tt.want)
		}
	}
	if (&Claims{}).HasScope("read") {
		t.Error("HasScope without a scope claim = true")
	}
}

// TestClaimsClone: a clone shares nothing a handler could change.
func TestClaimsClone(t *testing.T) {
	c := verified(t)
	d := c.Clone()
	d.Subject = "mallory"
	d.Audience[0] = "elsewhere"
	d.Extra["roles"].([]any)[0] = "owner"
	d.Extra["org"].(map[string]any)["tier"] = 99.0
	d.Extra["new"] = true
	d.IssuedAt = d.IssuedAt.Add(time.Hour)
	want := verified(t)
	if c.Subject != want.Subject || c.Audience[0] != want.Audience[0] || !c.Has("roles", "admin") ||
		c.Extra["org"].(map[string]any)["tier"] != 2.0 || c.Extra["new"] != nil || !c.IssuedAt.Equal(want.IssuedAt) {
		t.Errorf("after changing the clone, the original = %+v, want %+v", c, want)
	}
	if (&Claims{}).Clone().Extra != nil {
		t.Error("Clone of claims without Extra has a non-nil Extra")
	}
}
