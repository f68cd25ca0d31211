package strictjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeObjectValue(t *testing.T) {
	tests := []struct {
		name  string
		input string
		ok    bool
	}{
		{"empty object", `{}`, true},
		{"whitespace", " \t\r\n{ \"a\" : [ 1 , 2 ] } \n", true},
		{"all value types", `{"s":"x","n":-1.5e+3,"z":0,"t":true,"f":false,"u":null,"a":[],"o":{}}`, true},
		{"escapes", `{"e":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`, true},
		{"raw UTF-8", `{"e":"é😀"}`, true},
		{"escaped name equals plain name", `{"a":1,"\u0061":2}`, false},
		{"duplicate nested", `{"o":{"a":1,"a":1}}`, false},
		{"same name in different objects", `{"a":{"a":{"a":1}}}`, true},
		{"lone high surrogate", `{"e":"\ud800x"}`, false},
		{"lone low surrogate", `{"e":"\udc00"}`, false},
		{"high surrogate then non-surrogate", `{"e":"\ud800\u0041"}`, false},
		{"invalid UTF-8", "{\"e\":\"\xc3\x28\"}", false},
		{"invalid UTF-8 after escape", "{\"e\":\"\\n\xc3\"}", false},
		{"overlong UTF-8", "{\"e\":\"\xc0\xaf\"}", false},
		{"raw control character", "{\"e\":\"a\x01\"}", false},
		{"bad escape", `{"e":"\x"}`, false},
		{"short unicode escape", `{"e":"\u12"}`, false},
		{"leading zero", `{"n":01}`, false},
		{"bare minus", `{"n":-}`, false},
		{"trailing dot", `{"n":1.}`, false},
		{"empty exponent", `{"n":1e}`, false},
		{"plus sign", `{"n":+1}`, false},
		{"NaN", `{"n":NaN}`, false},
		{"huge number", `{"n":1e400}`, false},
		{"trailing comma in object", `{"a":1,}`, false},
		{"trailing comma in array", `{"a":[1,]}`, false},
		{"single quotes", `{'a':1}`, false},
		{"unquoted name", `{a:1}`, false},
		{"missing colon", `{"a" 1}`, false},
		{"truncated", `{"a":[1,2`, false},
		{"literal typo", `{"a":tru}`, false},
		{"trailing data", `{} {}`, false},
		{"array top level", `[]`, false},
		{"empty input", ``, false},
		{"depth 32", `{"a":` + nested(31) + `}`, true},
		{"depth 33", `{"a":` + nested(32) + `}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeObjectValue([]byte(tt.input), "payload", errMalformed)
			if (err == nil) != tt.ok {
				t.Fatalf("DecodeObjectValue(%q) = %v, want ok %v", tt.input, err, tt.ok)
			}
			if err != nil && !errors.Is(err, errMalformed) {
				t.Errorf("DecodeObjectValue(%q) = %v, want %v", tt.input, err, errMalformed)
			}
			if err == nil {
				assertMatchesEncodingJSON(t, tt.input, got)
			}
		})
	}
}

// assertMatchesEncodingJSON checks that a document the strict decoder
// accepted decodes to the same value under encoding/json.
func assertMatchesEncodingJSON(t *testing.T, input string, got map[string]any) {
	t.Helper()
	var want map[string]any
	if err := json.Unmarshal([]byte(input), &want); err != nil {
		t.Fatalf("decoder accepted %q, which encoding/json rejects: %v", input, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodeObjectValue(%q) = %#v, encoding/json gives %#v", input, got, want)
	}
}

// FuzzDecodeJSON checks the strict decoder against encoding/json: whatever
// it accepts must be valid JSON with the same meaning.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,"x",{"b":null}],"c":-0.5e-3}`, `{"e":"\ud83d\ude00\n"}`, `{"a":1,"a":2}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		got, err := DecodeObjectValue([]byte(input), "payload", errMalformed)
		if err != nil {
			if !errors.Is(err, errMalformed) || !strings.HasPrefix(err.Error(), "malformed: payload") {
				t.Fatalf("DecodeObjectValue(%q) = %v, want %v", input, err, errMalformed)
			}
			return
		}
		assertMatchesEncodingJSON(t, input, got)
	})
}

// errMalformed is the sentinel these tests have syntax errors wrap.
var errMalformed = errors.New("malformed")

// nested returns depth arrays nested in one another.
func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}
