// Package strictjson reads JSON strictly: valid UTF-8 only, no lone
// surrogates, no member name twice in one object at any depth, nesting at
// most MaxDepth, nothing after the value. Package token reads access token
// headers and payloads with it, and the authority checks application
// claims with it before it stores them, so that one set of claims has one
// accepted encoding everywhere. Stateless, safe for concurrent use.
package strictjson

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of objects and arrays. Real claims nest two or
// three levels; the cap keeps a hostile document from exhausting the stack.
const MaxDepth = 32

// Decoder reads one JSON text (RFC 8259) strictly: valid UTF-8 only, no lone
// surrogates, no duplicate member names at any depth, nesting at most
// MaxDepth. It exists so the verify path can read the header and the
// registered claims without reflection and without the silent last-wins
// handling of duplicates in encoding/json. Values it builds have the types
// encoding/json gives an any: map[string]any, []any, string, float64, bool, nil.
type Decoder struct {
	data  []byte
	pos   int
	depth int
	max   int    // MaxDepth, or more for a document that nests one (DecodeObjectValueWithin)
	part  string // "header" or "payload", for error messages
	err   error  // the sentinel every syntax error wraps
}

// DecodeObject reads data as a single JSON object, calling member for each
// member with its decoded name; member must consume the value exactly once.
// Syntax errors wrap malformed (token.ErrMalformed for package token) and
// name part ("header", "payload", "claims").
func DecodeObject(data []byte, part string, malformed error, member func(d *Decoder, name []byte) error) error {
	return decodeObject(data, part, malformed, MaxDepth, member)
}

func decodeObject(data []byte, part string, malformed error, maxDepth int, member func(d *Decoder, name []byte) error) error {
	d := &Decoder{data: data, part: part, err: malformed, max: maxDepth}
	d.SkipSpace()
	if d.Peek() != '{' {
		return fmt.Errorf("%w: %s is not a JSON object", d.err, part)
	}
	if err := d.object(func(name []byte) error { return member(d, name) }); err != nil {
		return err
	}
	d.SkipSpace()
	if d.pos != len(d.data) {
		return d.Errorf("data after the JSON object")
	}
	return nil
}

// DecodeObjectValue reads data as a single JSON object into a map.
func DecodeObjectValue(data []byte, part string, malformed error) (map[string]any, error) {
	return DecodeObjectValueWithin(data, part, malformed, MaxDepth)
}

// DecodeObjectValueWithin is DecodeObjectValue with nesting up to maxDepth:
// for a document that carries a token's claims one level down (a request
// body), whose claims are then checked against MaxDepth on their own.
func DecodeObjectValueWithin(data []byte, part string, malformed error, maxDepth int) (map[string]any, error) {
	m := map[string]any{}
	err := decodeObject(data, part, malformed, maxDepth, func(d *Decoder, name []byte) error {
		return d.Member(m, name)
	})
	return m, err
}

// Errorf returns a syntax error at the current offset.
func (d *Decoder) Errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s at offset %d", d.err, d.part, fmt.Sprintf(format, args...), d.pos)
}

// SkipSpace skips JSON whitespace.
func (d *Decoder) SkipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// Peek returns the next byte, or 0 at the end of the input.
func (d *Decoder) Peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *Decoder) consume(c byte) bool {
	d.SkipSpace()
	if d.Peek() == c {
		d.pos++
		return true
	}
	return false
}

func (d *Decoder) enter() error {
	if d.depth++; d.depth > d.max {
		return d.Errorf("nesting deeper than %d", d.max)
	}
	return nil
}

// object reads an object, calling member after each name and its colon.
func (d *Decoder) object(member func(name []byte) error) error {
	if !d.consume('{') {
		return d.Errorf("expected an object")
	}
	if err := d.enter(); err != nil {
		return err
	}
	if d.consume('}') {
		d.depth--
		return nil
	}
	for {
		d.SkipSpace()
		name, err := d.str()
		if err != nil {
			return err
		}
		if !d.consume(':') {
			return d.Errorf("expected ':' after member name")
		}
		if err := member(name); err != nil {
			return err
		}
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			d.depth--
			return nil
		}
		return d.Errorf("expected ',' or '}' in object")
	}
}

// Object reads an object value, calling member after each name and its
// colon; member must consume the value exactly once, and refusing a name
// twice is its job (as with DecodeObject). It lets a reader decode a nested
// object into fields of its own instead of a map.
func (d *Decoder) Object(member func(name []byte) error) error {
	return d.object(member)
}

// Member reads the value of member name into m, refusing a repeated name.
func (d *Decoder) Member(m map[string]any, name []byte) error {
	if _, dup := m[string(name)]; dup {
		return d.Errorf("duplicate member %q", name)
	}
	v, err := d.Value()
	if err != nil {
		return err
	}
	m[string(name)] = v
	return nil
}

// Value reads any JSON value.
func (d *Decoder) Value() (any, error) {
	d.SkipSpace()
	switch c := d.Peek(); c {
	case '{':
		m := map[string]any{}
		err := d.object(func(name []byte) error { return d.Member(m, name) })
		return m, err
	case '[':
		return d.array()
	case '"':
		s, err := d.str()
		return string(s), err
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	default:
		return d.float()
	}
}

func (d *Decoder) array() ([]any, error) {
	d.pos++ // '['
	if err := d.enter(); err != nil {
		return nil, err
	}
	a := []any{}
	if d.consume(']') {
		d.depth--
		return a, nil
	}
	for {
		v, err := d.Value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		if d.consume(',') {
			continue
		}
		if d.consume(']') {
			d.depth--
			return a, nil
		}
		return nil, d.Errorf("expected ',' or ']' in array")
	}
}

func (d *Decoder) literal(word string) error {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return d.Errorf("invalid literal")
	}
	d.pos += len(word)
	return nil
}

func (d *Decoder) float() (float64, error) {
	raw, err := d.number()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, d.Errorf("number %s out of range", raw)
	}
	return f, nil
}

// number reads a number and returns its text, checked against the grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *Decoder) number() ([]byte, error) {
	d.SkipSpace()
	start := d.pos
	if d.Peek() == '-' {
		d.pos++
	}
	switch c := d.Peek(); {
	case c == '0':
		d.pos++
	case c >= '1' && c <= '9':
		d.digits()
	default:
		return nil, d.Errorf("invalid value")
	}
	if d.Peek() == '.' {
		d.pos++
		if d.digits() == 0 {
			return nil, d.Errorf("invalid number")
		}
	}
	if c := d.Peek(); c == 'e' || c == 'E' {
		d.pos++
		if c := d.Peek(); c == '+' || c == '-' {
			d.pos++
		}
		if d.digits() == 0 {
			return nil, d.Errorf("invalid number")
		}
	}
	return d.data[start:d.pos], nil
}

func (d *Decoder) digits() int {
	start := d.pos
	for c := d.Peek(); c >= '0' && c <= '9'; c = d.Peek() {
		d.pos++
	}
	return d.pos - start
}

// str reads a string and returns its decoded bytes. Without escapes the
// result aliases the input, which keeps the common case free of copies.
func (d *Decoder) str() ([]byte, error) {
	if d.Peek() != '"' {
		return nil, d.Errorf("expected a string")
	}
	d.pos++
	start := d.pos
	ascii := true
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; {
		case c == '"':
			s := d.data[start:d.pos]
			if !ascii && !utf8.Valid(s) {
				return nil, d.Errorf("string is not valid UTF-8")
			}
			d.pos++
			return s, nil
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return nil, d.Errorf("control character in string")
		case c >= 0x80:
			ascii = false
		}
		d.pos++
	}
	return nil, d.Errorf("unterminated string")
}

// escaped finishes reading a string that contains a backslash, decoding into
// a new buffer. Escapes only ever produce whole UTF-8 sequences, so checking
// the decoded result once also checks every raw byte.
func (d *Decoder) escaped(start int) ([]byte, error) {
	out := append([]byte(nil), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			if !utf8.Valid(out) {
				return nil, d.Errorf("string is not valid UTF-8")
			}
			return out, nil
		case c == '\\':
			var err error
			if out, err = d.escape(out); err != nil {
				return nil, err
			}
		case c < 0x20:
			return nil, d.Errorf("control character in string")
		default:
			out = append(out, c)
			d.pos++
		}
	}
	return nil, d.Errorf("unterminated string")
}

// escape decodes one backslash escape at d.pos and appends it to out.
func (d *Decoder) escape(out []byte) ([]byte, error) {
	if d.pos+1 >= len(d.data) {
		return nil, d.Errorf("unterminated string")
	}
	c := d.data[d.pos+1]
	d.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(out, c), nil
	case 'b':
		return append(out, '\b'), nil
	case 'f':
		return append(out, '\f'), nil
	case 'n':
		return append(out, '\n'), nil
	case 'r':
		return append(out, '\r'), nil
	case 't':
		return append(out, '\t'), nil
	case 'u':
		r, err := d.unicodeEscape()
		return utf8.AppendRune(out, r), err
	}
	return nil, d.Errorf("invalid escape")
}

// unicodeEscape decodes the hex digits after \u, joining a surrogate pair.
// A lone surrogate is refused rather than replaced with U+FFFD, so two
// different encodings never decode to the same claim.
func (d *Decoder) unicodeEscape() (rune, error) {
	r, ok := d.hex4()
	if !ok {
		return 0, d.Errorf("invalid \\u escape")
	}
	if !utf16.IsSurrogate(r) {
		return r, nil
	}
	if r < 0xDC00 && d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
		d.pos += 2
		lo, ok := d.hex4()
		if pair := utf16.DecodeRune(r, lo); ok && pair != utf8.RuneError {
			return pair, nil
		}
	}
	return 0, d.Errorf("unpaired surrogate in \\u escape")
}

func (d *Decoder) hex4() (rune, bool) {
	if len(d.data)-d.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.data[d.pos : d.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.pos += 4
	return r, true
}

// StringValue reads a value that should be a string. If it is some other
// value it is still consumed, and ok is false.
func (d *Decoder) StringValue() (s []byte, ok bool, err error) {
	d.SkipSpace()
	if d.Peek() != '"' {
		_, err = d.Value()
		return nil, false, err
	}
	s, err = d.str()
	return s, err == nil, err
}

// NumberValue reads a value that should be a number, like StringValue.
func (d *Decoder) NumberValue() (raw []byte, ok bool, err error) {
	d.SkipSpace()
	if c := d.Peek(); c != '-' && (c < '0' || c > '9') {
		_, err = d.Value()
		return nil, false, err
	}
	raw, err = d.number()
	return raw, err == nil, err
}
