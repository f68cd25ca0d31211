package dbsc

import (
	"errors"
	"strings"
)

// ErrHeader: a DBSC request header is not the structured-field string
// (RFC 9651 §3.3.3) it must be.
var ErrHeader = errors.New("dbsc: header is not a structured-field string")

// Quote returns s as an RFC 9651 string: in double quotes, with " and \
// escaped. s must be printable ASCII (every value tegata sends is: session
// ids, challenges, paths); other bytes are dropped rather than sent as a
// header that browsers refuse.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Unquote reads the RFC 9651 string at the start of a header value
// (Secure-Session-Response, Sec-Secure-Session-Id) and ignores the
// parameters after it, as the specification says receivers do.
func Unquote(v string) (string, error) {
	v = strings.TrimLeft(v, " ")
	if !strings.HasPrefix(v, `"`) {
		return "", ErrHeader
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\':
			if i+1 >= len(v) || (v[i+1] != '"' && v[i+1] != '\\') {
				return "", ErrHeader
			}
			i++
			b.WriteByte(v[i])
		case c == '"':
			if rest := strings.TrimLeft(v[i+1:], " "); rest != "" && rest[0] != ';' {
				return "", ErrHeader
			}
			return b.String(), nil
		case c < 0x20 || c >= 0x7f:
			return "", ErrHeader
		default:
			b.WriteByte(c)
		}
	}
	return "", ErrHeader
}
