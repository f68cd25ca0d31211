package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"
)

// maxBody caps every request body; the largest legitimate one (claims of
// MaxClaimsLen plus a subject) is far smaller.
const maxBody = 64 << 10

// readBody reads a body capped at maxBody, requiring the given media type
// when the body is not empty (an empty body is allowed where every field is
// optional).
func readBody(w http.ResponseWriter, r *http.Request, mediaType string) ([]byte, error) {
	return readBodyLimit(w, r, mediaType, maxBody)
}

// readBodyLimit is readBody with another cap. The body's arrival is bounded
// by httpguard.BodyDeadline, which New applies to every route.
func readBodyLimit(w http.ResponseWriter, r *http.Request, mediaType string, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request",
			Description: fmt.Sprintf("request body is larger than %d bytes", limit)}
	}
	if err != nil {
		return nil, badRequest("request body could not be read", err)
	}
	if len(body) == 0 {
		return nil, nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != mediaType {
		return nil, &apiError{Status: http.StatusUnsupportedMediaType, Code: "invalid_request",
			Description: "Content-Type must be " + mediaType}
	}
	return body, nil
}

// decodeJSON decodes exactly one JSON object into v: no unknown fields, no
// field given twice or in another case (see checkNames), nothing after it.
// required says whether an empty body is an error.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, required bool) error {
	return decodeJSONLimit(w, r, v, required, maxBody)
}

// decodeJSONLimit is decodeJSON for a body of up to limit bytes.
func decodeJSONLimit(w http.ResponseWriter, r *http.Request, v any, required bool, limit int64) error {
	body, err := readBodyLimit(w, r, "application/json", limit)
	if err != nil {
		return err
	}
	if body == nil {
		if required {
			return badRequest("request body is required (a JSON object)", nil)
		}
		return nil
	}
	return unmarshalStrict(body, v)
}

func unmarshalStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("malformed JSON body: "+jsonProblem(err), err)
	}
	if dec.More() {
		return badRequest("malformed JSON body: more than one JSON value", nil)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("malformed JSON body: trailing data after the object", nil)
	}
	if err := checkNames(body, reflect.TypeOf(v)); err != nil {
		return badRequest("malformed JSON body: "+err.Error(), nil)
	}
	return nil
}

// jsonProblem turns a decoder error into a message that names the field
// but does not echo input back.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	}
	return err.Error() // "json: unknown field \"x\"" and the like
}

// decodeForm parses an application/x-www-form-urlencoded body (RFC 7009,
// RFC 7662) and returns the single value of field.
func decodeForm(w http.ResponseWriter, r *http.Request, field string) (string, error) {
	body, err := readBody(w, r, "application/x-www-form-urlencoded")
	if err != nil {
		return "", err
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return "", badRequest("malformed form body", err)
	}
	v := vals[field]
	if len(v) == 1 {
		// A token never holds whitespace; a trailing newline is what
		// `curl --data-urlencode token@file` sends, as the CLI trims it.
		v[0] = strings.TrimSpace(v[0])
	}
	if len(v) != 1 || v[0] == "" {
		return "", badRequest(fmt.Sprintf("form field %q is required exactly once", field), nil)
	}
	return v[0], nil
}
