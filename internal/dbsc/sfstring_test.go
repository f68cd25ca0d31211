package dbsc

import (
	"errors"
	"testing"
)

func TestUnquote(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{"plain", `"abc"`, "abc", false},
		{"with parameters", `"abc";id="x"`, "abc", false},
		{"leading space", ` "abc"`, "abc", false},
		{"escapes", `"a\"b\\c"`, `a"b\c`, false},
		{"a JWS", `"eyJ.eyJ.sig-_"`, "eyJ.eyJ.sig-_", false},
		{"token, not a string", `abc`, "", true},
		{"unterminated", `"abc`, "", true},
		{"bad escape", `"a\nb"`, "", true},
		{"control byte", "\"a\tb\"", "", true},
		{"non-ASCII", "\"caf\xc3\xa9\"", "", true},
		{"junk after", `"abc"x`, "", true},
		{"a list of two", `"a", "b"`, "", true},
	}
	for _, tt := range tests {
		got, err := Unquote(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%s: Unquote(%q) = %q, %v, want %q, error %v", tt.name, tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrHeader) {
			t.Errorf("%s: Unquote(%q) = %v, want ErrHeader", tt.name, tt.in, err)
		}
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"", "abc", `a"b\c`, "ses_0123", "/.tegata/dbsc/register"} {
		got, err := Unquote(Quote(s))
		if err != nil || got != s {
			t.Errorf("Unquote(Quote(%q)) = %q, %v", s, got, err)
		}
	}
	if q := Quote("a\nb\xff"); q != `"ab"` {
		t.Errorf(`Quote("a\nb\xff") = %s, want "ab"`, q)
	}
}
