package dpop

import (
	"errors"
	"net/url"
	"strings"
)

// NormalizeURL puts an http or https URL in the form htu values are
// compared in (RFC 9449 §4.3: RFC 3986 §6.2.2 and §6.2.3 normalisation,
// query and fragment ignored): scheme and host in lower case, the
// scheme's default port dropped, percent-encoding with upper-case hex and
// unreserved characters decoded, dot segments removed, an empty path as
// "/". A URL with user information is refused.
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", errors.New("not an http or https URL")
	}
	if u.User != nil || u.Host == "" || u.Opaque != "" {
		return "", errors.New("not an absolute URL with a host and no user information")
	}
	host := strings.ToLower(u.Host)
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	}
	host = strings.TrimSuffix(host, ":") // an empty port is the default one
	p, err := normalizePercent(u.EscapedPath())
	if err != nil {
		return "", err
	}
	p = removeDotSegments(p)
	if p == "" {
		p = "/"
	}
	return scheme + "://" + host + p, nil
}

// normalize is NormalizeURL without its work for a URL already in normal
// form, as the URLs a verifier builds for a request and the htu of most
// proofs are.
func normalize(raw string) (string, error) {
	if isNormal(raw) {
		return raw, nil
	}
	return NormalizeURL(raw)
}

// isNormal reports whether NormalizeURL would return s unchanged, by a
// conservative test that allocates nothing: http or https in lower case, a
// host of lower-case letters, digits, dots and hyphens with no port or a
// port that is not the scheme's default, and a path of characters that
// need no encoding and no dot segments. Anything else (a query, a
// fragment, a percent sign, an IPv6 literal, ...) takes the full way.
func isNormal[T string | []byte](s T) bool {
	var rest T
	switch {
	case len(s) > 8 && string(s[:8]) == "https://":
		rest = s[8:]
	case len(s) > 7 && string(s[:7]) == "http://":
		rest = s[7:]
	default:
		return false
	}
	slash := 0
	for slash < len(rest) && rest[slash] != '/' {
		slash++
	}
	if slash == len(rest) || !isNormalHost(rest[:slash], len(s)-len(rest) == 8) {
		return false
	}
	return isNormalPath(rest[slash:])
}

func isNormalHost[T string | []byte](h T, https bool) bool {
	colon := -1
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '-':
			if colon >= 0 && (c < '0' || c > '9') {
				return false
			}
		case c == ':' && colon < 0:
			colon = i
		default:
			return false
		}
	}
	if colon < 0 {
		return len(h) > 0
	}
	port := string(h[colon+1:])
	return colon > 0 && port != "" && !(https && port == "443") && !(!https && port == "80")
}

// isNormalPath: a path starting with '/' of RFC 3986 pchar characters
// without percent-encoding, and no "." or ".." segment.
func isNormalPath[T string | []byte](p T) bool {
	segStart := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			if seg := string(p[segStart:i]); seg == "." || seg == ".." {
				return false
			}
			segStart = i + 1
			continue
		}
		if !isPathChar(p[i]) {
			return false
		}
	}
	return true
}

// isPathChar: unreserved, sub-delims, ':' and '@' (RFC 3986 §3.3), which
// net/url keeps in a path as they are.
func isPathChar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@", c) >= 0
}

// normalizePercent decodes percent-encoded unreserved characters and puts
// the hex of the others in upper case (RFC 3986 §6.2.2.1, §6.2.2.2).
func normalizePercent(p string) (string, error) {
	if !strings.Contains(p, "%") {
		return p, nil
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) || unhex(p[i+1]) < 0 || unhex(p[i+2]) < 0 {
			return "", errors.New("malformed percent-encoding")
		}
		c := byte(unhex(p[i+1])<<4 | unhex(p[i+2]))
		if isUnreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(p[i+1:i+3]))
		}
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// removeDotSegments is RFC 3986 §5.2.4.
func removeDotSegments(in string) string {
	var out []string
	segs := strings.Split(in, "/")
	for i, s := range segs {
		switch s {
		case ".":
			if i == len(segs)-1 {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if i == len(segs)-1 {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, "/")
}
