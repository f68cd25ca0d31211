package main

import "testing"

// TestSafeNext: the login form's next parameter stays a path on this site.
// "/\t/evil" would be an open redirect: browsers drop the tab from the
// Location and land on //evil.
func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/dash?tab=2":                  "/dash?tab=2",
		"/notes#new":                   "/notes#new",
		"/a/b%2Fc":                     "/a/b%2Fc",
		"":                             "/",
		"dash":                         "/",
		"//evil.example":               "/",
		"/\\evil.example":              "/",
		"/\t/evil.example":             "/",
		"/\n/evil.example":             "/",
		"/x\\..\\evil":                 "/",
		"https://evil.example/":        "/",
		"/\x7f/evil":                   "/",
		"/%09/still-encoded-is-a-path": "/%09/still-encoded-is-a-path",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
