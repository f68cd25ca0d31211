package token

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of objects and arrays. Real claims nest two or
// three levels; the cap keeps a hostile document from exhausting the stack.
const maxDepth = 32

// decoder reads one JSON text (RFC 8259) strictly: valid UTF-8 only, no lone
// surrogates, no duplicate member names at any depth, nesting at most
// maxDepth. It exists so the verify path can read the header and the
// registered claims without reflection and without the silent last-wins
// handling of duplicates in encoding/json. Values it builds have the types
// encoding/json gives an any: map[string]any, []any, string, float64, bool, nil.
type decoder struct {
	data  []byte
	pos   int
	depth int
	part  string // "header" or "payload", for error messages
}

// decodeObject reads data as a single JSON object, calling member for each
// member with its decoded name; member must consume the value exactly once.
func decodeObject(data []byte, part string, member func(d *decoder, name []byte) error) error {
	d := &decoder{data: data, part: part}
	d.skipSpace()
	if d.peek() != '{' {
		return fmt.Errorf("%w: %s is not a JSON object", ErrMalformed, part)
	}
	if err := d.object(func(name []byte) error { return member(d, name) }); err != nil {
		return err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return d.errorf("data after the JSON object")
	}
	return nil
}

// decodeObjectValue reads data as a single JSON object into a map.
func decodeObjectValue(data []byte, part string) (map[string]any, error) {
	m := map[string]any{}
	err := decodeObject(data, part, func(d *decoder, name []byte) error {
		return d.member(m, name)
	})
	return m, err
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s at offset %d", ErrMalformed, d.part, fmt.Sprintf(format, args...), d.pos)
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next byte, or 0 at the end of the input.
func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *decoder) consume(c byte) bool {
	d.skipSpace()
	if d.peek() == c {
		d.pos++
		return true
	}
	return false
}

func (d *decoder) enter() error {
	if d.depth++; d.depth > maxDepth {
		return d.errorf("nesting deeper than %d", maxDepth)
	}
	return nil
}

// object reads an object, calling member after each name and its colon.
func (d *decoder) object(member func(name []byte) error) error {
	if !d.consume('{') {
		return d.errorf("expected an object")
	}
	if err := d.enter(); err != nil {
		return err
	}
	if d.consume('}') {
		d.depth--
		return nil
	}
	for {
		d.skipSpace()
		name, err := d.str()
		if err != nil {
			return err
		}
		if !d.consume(':') {
			return d.errorf("expected ':' after member name")
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
		return d.errorf("expected ',' or '}' in object")
	}
}

// member reads the value of member name into m, refusing a repeated name.
func (d *decoder) member(m map[string]any, name []byte) error {
	if _, dup := m[string(name)]; dup {
		return d.errorf("duplicate member %q", name)
	}
	v, err := d.value()
	if err != nil {
		return err
	}
	m[string(name)] = v
	return nil
}

// value reads any JSON value.
func (d *decoder) value() (any, error) {
	d.skipSpace()
	switch c := d.peek(); c {
	case '{':
		m := map[string]any{}
		err := d.object(func(name []byte) error { return d.member(m, name) })
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

func (d *decoder) array() ([]any, error) {
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
		v, err := d.value()
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
		return nil, d.errorf("expected ',' or ']' in array")
	}
}

func (d *decoder) literal(word string) error {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return d.errorf("invalid literal")
	}
	d.pos += len(word)
	return nil
}

func (d *decoder) float() (float64, error) {
	raw, err := d.number()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, d.errorf("number %s out of range", raw)
	}
	return f, nil
}

// number reads a number and returns its text, checked against the grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() ([]byte, error) {
	d.skipSpace()
	start := d.pos
	if d.peek() == '-' {
		d.pos++
	}
	switch c := d.peek(); {
	case c == '0':
		d.pos++
	case c >= '1' && c <= '9':
		d.digits()
	default:
		return nil, d.errorf("invalid value")
	}
	if d.peek() == '.' {
		d.pos++
		if d.digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.pos++
		if c := d.peek(); c == '+' || c == '-' {
			d.pos++
		}
		if d.digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	return d.data[start:d.pos], nil
}

func (d *decoder) digits() int {
	start := d.pos
	for c := d.peek(); c >= '0' && c <= '9'; c = d.peek() {
		d.pos++
	}
	return d.pos - start
}

// str reads a string and returns its decoded bytes. Without escapes the
// result aliases the input, which keeps the common case free of copies.
func (d *decoder) str() ([]byte, error) {
	if d.peek() != '"' {
		return nil, d.errorf("expected a string")
	}
	d.pos++
	start := d.pos
	ascii := true
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; {
		case c == '"':
			s := d.data[start:d.pos]
			if !ascii && !utf8.Valid(s) {
				return nil, d.errorf("string is not valid UTF-8")
			}
			d.pos++
			return s, nil
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return nil, d.errorf("control character in string")
		case c >= 0x80:
			ascii = false
		}
		d.pos++
	}
	return nil, d.errorf("unterminated string")
}

// escaped finishes reading a string that contains a backslash, decoding into
// a new buffer. Escapes only ever produce whole UTF-8 sequences, so checking
// the decoded result once also checks every raw byte.
func (d *decoder) escaped(start int) ([]byte, error) {
	out := append([]byte(nil), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			if !utf8.Valid(out) {
				return nil, d.errorf("string is not valid UTF-8")
			}
			return out, nil
		case c == '\\':
			var err error
			if out, err = d.escape(out); err != nil {
				return nil, err
			}
		case c < 0x20:
			return nil, d.errorf("control character in string")
		default:
			out = append(out, c)
			d.pos++
		}
	}
	return nil, d.errorf("unterminated string")
}

// escape decodes one backslash escape at d.pos and appends it to out.
func (d *decoder) escape(out []byte) ([]byte, error) {
	if d.pos+1 >= len(d.data) {
		return nil, d.errorf("unterminated string")
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
	return nil, d.errorf("invalid escape")
}

// unicodeEscape decodes the hex digits after \u, joining a surrogate pair.
// A lone surrogate is refused rather than replaced with U+FFFD, so two
// different encodings never decode to the same claim.
func (d *decoder) unicodeEscape() (rune, error) {
	r, ok := d.hex4()
	if !ok {
		return 0, d.errorf("invalid \\u escape")
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
	return 0, d.errorf("unpaired surrogate in \\u escape")
}

func (d *decoder) hex4() (rune, bool) {
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

// stringValue reads a value that should be a string. If it is some other
// value it is still consumed, and ok is false.
func (d *decoder) stringValue() (s []byte, ok bool, err error) {
	d.skipSpace()
	if d.peek() != '"' {
		_, err = d.value()
		return nil, false, err
	}
	s, err = d.str()
	return s, err == nil, err
}

// numberValue reads a value that should be a number, like stringValue.
func (d *decoder) numberValue() (raw []byte, ok bool, err error) {
	d.skipSpace()
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		_, err = d.value()
		return nil, false, err
	}
	raw, err = d.number()
	return raw, err == nil, err
}
