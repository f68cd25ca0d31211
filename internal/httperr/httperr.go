// Package httperr writes tegata's HTTP error answers, the same way
// everywhere: the authority's API, the feed, the gate and the verifier
// middleware. An error is a JSON body {"error": code, "error_description":
// text}, never cached; a refused credential also gets one RFC 6750
// WWW-Authenticate challenge, always with the realm.
//
// What a client is told is decided by the caller; this package only writes
// it. Every function is safe for concurrent use.
package httperr

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Realm is the protection space named in every challenge.
const Realm = "tegata"

// Error codes shared by several writers. RFC 6750 §3.1 defines the first
// three for bearer tokens.
const (
	InvalidRequest    = "invalid_request"
	InvalidToken      = "invalid_token"
	InsufficientScope = "insufficient_scope"
)

// Body is the JSON shape of every error answer.
type Body struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// WriteJSON answers status with v as JSON, marked not to be cached. Text
// is written as it is ("<key>", not "\u003ckey\u003e"): the answer is
// application/json, never embedded in HTML.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away: nothing to do
}

// Write answers status with the error body {code, description}.
func Write(w http.ResponseWriter, status int, code, description string) {
	WriteJSON(w, status, Body{code, description})
}

// Challenge is the WWW-Authenticate value for a bearer credential refused
// with code (empty when the request carried no credential at all: RFC 6750
// §3.1 says a challenge then carries no error) and description, which is
// reduced to the characters RFC 6750 allows in error_description.
func Challenge(code, description string) string {
	c := `Bearer realm="` + Realm + `"`
	if code == "" {
		return c
	}
	c += `, error="` + code + `"`
	if d := challengeText(description); d != "" {
		c += `, error_description="` + d + `"`
	}
	return c
}

// Refuse answers a refused bearer credential: the challenge for code and
// description, then the error body. status is 401, or 403 with
// InsufficientScope. A request that carried no credential (noCredential)
// gets the bare challenge but still the body with code, so a client reading
// JSON learns why.
func Refuse(w http.ResponseWriter, status int, code, description string, noCredential bool) {
	cc := code
	if noCredential {
		cc = ""
	}
	w.Header().Set("WWW-Authenticate", Challenge(cc, description))
	Write(w, status, code, description)
}

// challengeText keeps what RFC 6750 §3 allows inside error_description
// (%x20-21 / %x23-5B / %x5D-7E: printable ASCII without '"' and '\'),
// replacing anything else with a space, so a description never needs
// escaping and never breaks the header.
func challengeText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return ' '
		}
		return r
	}, s)
}
