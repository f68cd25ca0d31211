package gate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tegata-dev/tegata/verifier"
)

// Headers the gate sets. Every one starts with "X-Tegata-", which is what
// stripSpoofed removes from client requests.
const (
	HeaderSubject         = "X-Tegata-Subject"
	HeaderSession         = "X-Tegata-Session"
	HeaderClaimPrefix     = "X-Tegata-Claim-"
	HeaderClaimsTruncated = "X-Tegata-Claims-Truncated"
)

// field is one header to set.
type field struct{ name, value string }

// identity is what a verified request carries: the headers, in a fixed
// order, and the claims left out for lack of room (for the log).
type identity struct {
	fields  []field
	omitted []string
}

// apply sets the identity's headers on h.
func (id *identity) apply(h http.Header) {
	for _, f := range id.fields {
		h[f.name] = []string{f.value}
	}
}

// newIdentity builds the headers for verified claims: subject, session and
// the application claims in cfg.Claims (all when empty) in name order, as long
// as they fit in cfg.MaxClaimBytes. A claim whose name has no letter or
// digit, or whose header name another claim took first, is not sent. A
// claim the token lacks (or that is null) is not sent either, except when
// cfg.Claims names it: then its header is sent empty, so that a forward-auth
// proxy that copies the gate's headers over the request's (Envoy, Traefik)
// also overwrites a copy the client sent.
func newIdentity(c *verifier.Claims, cfg Config) *identity {
	id := &identity{fields: []field{
		{HeaderSubject, headerString(c.Subject())},
		{HeaderSession, headerString(c.SessionID())},
	}}
	if cfg.MaxClaimBytes < 0 {
		return id
	}
	budget := cfg.MaxClaimBytes
	taken := map[string]bool{}
	for _, name := range claimNames(c, cfg.Claims) {
		hn := claimHeaderName(name)
		if hn == "" || taken[hn] {
			continue
		}
		f := field{name: hn}
		if v, ok := claimHeaderValue(c, name); ok {
			f.value = v
		} else if len(cfg.Claims) == 0 {
			continue
		}
		// ": " and CRLF frame each header line.
		if size := len(f.name) + len(f.value) + 4; size <= budget {
			budget -= size
			taken[hn] = true
			id.fields = append(id.fields, f)
			continue
		}
		id.omitted = append(id.omitted, name)
	}
	if len(id.omitted) > 0 {
		id.fields = append(id.fields, field{HeaderClaimsTruncated, "true"})
	}
	return id
}

// claimNames returns the claim names to send, sorted so that the headers
// (and which claims win a name collision or the size budget) do not depend
// on map order.
func claimNames(c *verifier.Claims, want []string) []string {
	if len(want) == 0 {
		return c.ClaimNames()
	}
	names := slices.Clone(want)
	slices.Sort(names)
	return slices.Compact(names)
}

// claimHeaderName returns the header that carries claim name:
// X-Tegata-Claim- followed by the name with each run of characters other
// than ASCII letters and digits turned into one '-', trimmed of '-' at both
// ends and canonicalised ("https://example.com/roles" →
// X-Tegata-Claim-Https-Example-Com-Roles, "tenant_id" →
// X-Tegata-Claim-Tenant-Id). It returns "" for a name with no letter or
// digit.
func claimHeaderName(name string) string {
	b := make([]byte, 0, len(name))
	dash := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isAlnum(c) {
			if dash && len(b) > 0 {
				b = append(b, '-')
			}
			b = append(b, c)
			dash = false
			continue
		}
		dash = true
	}
	if len(b) == 0 {
		return ""
	}
	return textproto.CanonicalMIMEHeaderKey(HeaderClaimPrefix + string(b))
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// claimHeaderValue encodes claim name for a header; false when the token
// lacks it or it is null. A string is sent as it is when isPlainClaim;
// else as a JSON string;
// numbers and booleans as JSON, arrays and objects as compact JSON, encoded
// from the claims as they are (ClaimJSON), not from a copy. Every JSON value
// is printable ASCII (control characters, DEL and non-ASCII ones are \u
// escaped), so no header ever carries a control or non-ASCII byte.
func claimHeaderValue(c *verifier.Claims, name string) (string, bool) {
	raw, ok := c.ClaimJSON(name)
	if !ok || string(raw) == "null" {
		return "", false
	}
	if raw[0] == '"' {
		v, _ := c.Claim(name) // a string: no copy
		s, _ := v.(string)
		if !isPlainClaim(s) {
			return asciiJSON(s), true
		}
		return s, true
	}
	return escapeJSON(raw), true
}

// headerString sends a string (the subject, the session id) as it is when
// it is non-empty printable ASCII without surrounding spaces and does not
// begin with '"'; any other string is sent as a JSON string literal, so a
// value beginning with '"' is always JSON.
func headerString(s string) string {
	if isPlain(s) {
		return s
	}
	return asciiJSON(s)
}

// isPlain reports whether s can be a header value as it is and cannot be
// mistaken for a JSON string.
func isPlain(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' || s[0] == '"' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// isPlainClaim is isPlain for a claim's string, whose header also carries
// numbers, booleans, arrays and objects as JSON: a string that could be read
// as JSON (it begins as a number, array or object does, or is true, false or
// null) is sent as a JSON string, so that a claim header's value is JSON
// exactly when it parses as JSON, and the string 7 is "7", never 7.
func isPlainClaim(s string) bool {
	return isPlain(s) && strings.IndexByte("[{-0123456789", s[0]) < 0 && s != "true" && s != "false" && s != "null"
}

// asciiJSON returns v as compact JSON with every non-ASCII character
// escaped. v is a string or a Login, which always encode; if one somehow
// does not, the value says so rather than being dropped silently.
func asciiJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return strconv.Quote(fmt.Sprintf("unencodable %T", v))
	}
	return escapeJSON(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// escapeJSON returns compact JSON b with every non-ASCII character escaped.
func escapeJSON(b []byte) string {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		out = appendEscaped(out, r, b[:n])
		b = b[n:]
	}
	return string(out)
}

// appendEscaped appends rune r (encoded as raw) to out, as a \u escape (a
// surrogate pair beyond the BMP) if it is not printable ASCII. encoding/json
// escapes the other control characters itself but leaves DEL (0x7f) raw,
// and a header value must not carry it. Outside strings JSON is printable
// ASCII, so only string contents are ever escaped.
func appendEscaped(out []byte, r rune, raw []byte) []byte {
	if r < utf8.RuneSelf && r != 0x7f {
		return append(out, raw...)
	}
	if r > 0xffff {
		r -= 0x10000
		out = fmt.Appendf(out, `\u%04x`, 0xd800+(r>>10))
		r = 0xdc00 + (r & 0x3ff)
	}
	return fmt.Appendf(out, `\u%04x`, r)
}

// stripSpoofed deletes every header a client could use to pass itself off
// as verified: any name that starts with "X-Tegata-" in any case, with '_'
// counted as '-', because many frameworks (CGI, WSGI, Rack, PHP) read
// X_Tegata_Subject and X-Tegata-Subject as the same variable.
func stripSpoofed(h http.Header) {
	for name := range h {
		if isTegataHeader(name) {
			delete(h, name)
		}
	}
}

// stripForwarding deletes every forwarding header the client sent, in any
// spelling: Forwarded, X-Real-Ip and X-Forwarded-* in any case, with '_'
// counted as '-'. The gate sets X-Forwarded-For, -Host and -Proto itself;
// a client's X_Forwarded_Host would otherwise reach servers that merge '_'
// and '-' (CGI, WSGI, Rack, PHP) and build links for another host, and its
// X-Forwarded-Port, -Ssl or -Scheme would change the scheme or port they
// believe.
func stripForwarding(h http.Header) {
	for name := range h {
		if isForwardingHeader(name) {
			delete(h, name)
		}
	}
}

func isForwardingHeader(name string) bool {
	n := foldHeader(name)
	return n == "forwarded" || n == "x-real-ip" || strings.HasPrefix(n, "x-forwarded-")
}

// foldHeader lower-cases name and turns '_' into '-', as the frameworks
// that merge the two spellings do.
func foldHeader(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' {
			return '-'
		}
		return unicode.ToLower(r)
	}, name)
}

// lowerPrefix is the prefix stripSpoofed matches, lower-cased.
const lowerPrefix = "x-tegata-"

func isTegataHeader(name string) bool {
	if len(name) < len(lowerPrefix) {
		return false
	}
	for i := 0; i < len(lowerPrefix); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != lowerPrefix[i] {
			return false
		}
	}
	return true
}
