package cli

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// printable returns s with everything a terminal could act on escaped:
// control characters (C0 including tab and newline, DEL, C1), the Unicode
// bidirectional controls and line separators (which reorder or break what
// follows), as \uXXXX, and bytes that are not UTF-8 as \xXX. Device labels
// (often a User-Agent), audit reasons and subjects are chosen by whoever
// calls the API; printed raw, an ESC sequence could rewrite the operator's
// screen or a newline forge a table row. The escapes are valid inside a
// JSON string, so printJSON uses the same function on its output.
func printable(s string) string {
	i := strings.IndexFunc(s, needsEscape)
	if i < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

func needsEscape(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true // bidirectional formatting
	case r == 0x2028, r == 0x2029:
		return true // line and paragraph separators
	}
	return false
}
