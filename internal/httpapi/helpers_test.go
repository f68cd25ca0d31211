package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
)

func TestAccepts(t *testing.T) {
	const statuslist = "application/statuslist+jwt"
	tests := []struct {
		name   string
		accept []string
		want   bool
	}{
		{"no header", nil, true},
		{"anything", []string{"*/*"}, true},
		{"the type", []string{statuslist}, true},
		{"its major type", []string{"application/*"}, true},
		{"among others", []string{"text/html, application/statuslist+jwt;q=0.5"}, true},
		{"in a second header", []string{"text/html", statuslist}, true},
		{"with spaces and parameters", []string{"  application/statuslist+jwt ; q=1  "}, true},
		{"another type", []string{"application/json"}, false},
		{"another major type", []string{"text/*"}, false},
		{"refused with q=0", []string{"application/statuslist+jwt;q=0"}, false},
		{"anything but q=0", []string{"*/*;q=0"}, false},
		{"malformed q", []string{"application/statuslist+jwt;q=x"}, false},
		{"malformed entry skipped", []string{"%%%, application/statuslist+jwt"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := accepts(tt.accept, statuslist); got != tt.want {
				t.Errorf("accepts(%q, %s) = %v, want %v", tt.accept, statuslist, got, tt.want)
			}
		})
	}
}

func TestSecondsRounding(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		d        time.Duration
		ceil     int64
		maxAgeIn int
	}{
		{0, 0, 0},
		{time.Nanosecond, 1, 0},
		{time.Second, 1, 1},
		{1500 * time.Millisecond, 2, 1},
		{time.Hour, 3600, 3600},
		{-time.Minute, 0, 0}, // maxAge of a past expiry
	} {
		if got := ceilSeconds(tt.d); tt.d >= 0 && got != tt.ceil { // it takes durations ≥ 0 (lifetimes)
			t.Errorf("ceilSeconds(%v) = %d, want %d", tt.d, got, tt.ceil)
		}
		if got := maxAge(now.Add(tt.d), now); got != tt.maxAgeIn {
			t.Errorf("maxAge(now+%v, now) = %d, want %d (whole seconds, never negative)", tt.d, got, tt.maxAgeIn)
		}
	}
}

func TestQueryInt(t *testing.T) {
	tests := []struct {
		query   string
		want    int64
		wantErr bool
	}{
		{"", 0, false},
		{"after=0", 0, false},
		{"after=42", 42, false},
		{"after=9223372036854775807", 1<<63 - 1, false},
		{"after=-1", 0, true},
		{"after=1.5", 0, true},
		{"after=ten", 0, true},
		{"after=9223372036854775808", 0, true},
		{"other=5", 0, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/v1/audit?"+tt.query, nil)
		got, err := queryInt(r, "after")
		if tt.wantErr {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Description, "after must be a non-negative integer") {
				t.Errorf("queryInt(%q) = %d, %v, want 400 naming the parameter", tt.query, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("queryInt(%q) = %d, %v, want %d", tt.query, got, err, tt.want)
		}
	}
}

// sessionBody is a request body with the shapes decodeJSON must check.
type sessionBody struct {
	Subject string         `json:"subject"`
	TTL     int            `json:"ttl"`
	Claims  map[string]any `json:"claims"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		required    bool
		status      int    // 0 means decoded
		desc        string // part of the description
	}{
		{"an object", "application/json", `{"subject":"alice","ttl":60}`, true, 0, ""},
		{"with a charset", "application/json; charset=utf-8", `{"subject":"alice"}`, true, 0, ""},
		{"empty, optional", "", "", false, 0, ""},
		{"empty, required", "", "", true, 400, "request body is required"},
		{"another media type", "text/plain", `{"subject":"alice"}`, true, 415, "Content-Type must be application/json"},
		{"no media type", "", `{"subject":"alice"}`, true, 415, "Content-Type must be application/json"},
		{"too large", "application/json", `{"subject":"` + strings.Repeat("a", maxBody) + `"}`, true, 413, "larger than"},
		{"unknown field", "application/json", `{"subject":"alice","admin":true}`, true, 400, `unknown field "admin"`},
		{"duplicate field", "application/json", `{"subject":"alice","subject":"root"}`, true, 400, "malformed JSON body"},
		{"case variant of a field", "application/json", `{"subject":"alice","SUBJECT":"root"}`, true, 400, "malformed JSON body"},
		{"case variant alone", "application/json", `{"Subject":"root"}`, true, 400, "malformed JSON body"},
		{"two values", "application/json", `{"subject":"a"} {"subject":"b"}`, true, 400, "more than one JSON value"},
		{"trailing data", "application/json", `{"subject":"a"}]`, true, 400, "malformed JSON body"},
		{"wrong type names the field", "application/json", `{"subject":"alice","ttl":"secret-looking-input"}`, true, 400, `field "ttl" must be int`},
		{"syntax error", "application/json", `{"subject":}`, true, 400, "syntax error at byte"},
		{"cut short", "application/json", `{"subject":"al`, true, 400, "unexpected end of input"},
		{"not an object", "application/json", `["alice"]`, true, 400, "malformed JSON body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/sessions", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var v sessionBody
			err := decodeJSON(httptest.NewRecorder(), r, &v, tt.required)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("decodeJSON(%.60q) = %v, want nil", tt.body, err)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != tt.status || ae.Code != "invalid_request" || !strings.Contains(ae.Description, tt.desc) {
				t.Fatalf("decodeJSON(%.60q) = %v, want %d invalid_request containing %q", tt.body, err, tt.status, tt.desc)
			}
			if strings.Contains(ae.Description, "secret-looking-input") {
				t.Errorf("description %q echoes the input back", ae.Description)
			}
		})
	}
}

func TestDecodeForm(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		want        string
		status      int
	}{
		{"the field", "application/x-www-form-urlencoded", "token=abc", "abc", 0},
		{"with another field", "application/x-www-form-urlencoded", "token_type_hint=refresh_token&token=abc", "abc", 0},
		{"trailing newline trimmed", "application/x-www-form-urlencoded", "token=abc%0A", "abc", 0},
		{"missing", "application/x-www-form-urlencoded", "other=abc", "", 400},
		{"twice", "application/x-www-form-urlencoded", "token=abc&token=def", "", 400},
		{"empty", "application/x-www-form-urlencoded", "token=", "", 400},
		{"blank", "application/x-www-form-urlencoded", "token=%20%0A", "", 400},
		{"malformed", "application/x-www-form-urlencoded", "token=%zz", "", 400},
		{"JSON instead", "application/json", `{"token":"abc"}`, "", 415},
		{"no body", "", "", "", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/revoke", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			got, err := decodeForm(httptest.NewRecorder(), r, "token")
			if tt.status == 0 {
				if err != nil || got != tt.want {
					t.Fatalf("decodeForm(%q) = %q, %v, want %q", tt.body, got, err, tt.want)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != tt.status {
				t.Fatalf("decodeForm(%q) = %q, %v, want status %d", tt.body, got, err, tt.status)
			}
		})
	}
}

func TestClaimsField(t *testing.T) {
	tests := []struct {
		name, body string
		want       string // the claims as JSON; "absent" when nil
	}{
		{"absent: the claims stay", `{}`, "absent"},
		{"null clears", `{"claims":null}`, `{}`},
		{"empty object clears", `{"claims":{}}`, `{}`},
		{"new claims", `{"claims":{"role":"viewer"}}`, `{"role":"viewer"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v struct {
				Claims claimsField `json:"claims"`
			}
			if err := json.Unmarshal([]byte(tt.body), &v); err != nil {
				t.Fatal(err)
			}
			got := "absent"
			if v.Claims != nil {
				b, _ := json.Marshal(v.Claims)
				got = string(b)
			}
			if got != tt.want {
				t.Errorf("claims of %s = %s, want %s", tt.body, got, tt.want)
			}
		})
	}
	var v struct {
		Claims claimsField `json:"claims"`
	}
	if err := json.Unmarshal([]byte(`{"claims":["role"]}`), &v); err == nil {
		t.Errorf("claims of an array = %v, want an error", v.Claims)
	}
}

// TestWriteError: the one error path. The client gets the status, a
// stable code and a description; the cause goes to the log only, at a
// level that matches its gravity.
func TestWriteError(t *testing.T) {
	cause := errors.New("pq: password authentication failed for user tegata")
	tests := []struct {
		name       string
		err        error
		status     int
		code, desc string
		header     [2]string
		level      slog.Level
		logsCause  bool // the log names the cause (password...), the answer never does
	}{
		{"unknown error", fmt.Errorf("store: %w", cause), 500, "server_error", "internal error", [2]string{}, slog.LevelError, true},
		{"authority refusal", &authority.Error{Code: authority.CodeInvalidRequest, Description: "subject is required", Detail: cause.Error()},
			400, "invalid_request", "subject is required", [2]string{}, slog.LevelInfo, true},
		{"not found", fmt.Errorf("wrapped: %w", &authority.Error{Code: authority.CodeNotFound, Description: "no such session"}),
			404, authority.CodeNotFound, "no such session", [2]string{}, slog.LevelInfo, false},
		{"conflict", &authority.Error{Code: authority.CodeConflict, Description: "exists"}, 409, authority.CodeConflict, "exists", [2]string{}, slog.LevelInfo, false},
		{"stale", fmt.Errorf("introspect: %w: %w", authority.ErrStale, cause), 503, "temporarily_unavailable", "try another node",
			[2]string{"Retry-After", "1"}, slog.LevelError, true},
		{"unauthorized", authority.ErrUnauthorized, 401, "invalid_token", "invalid API key",
			[2]string{"WWW-Authenticate", `Bearer realm="tegata", error="invalid_token", error_description="invalid API key"`}, slog.LevelInfo, false},
		{"rate limited", tooMany(1500*time.Millisecond, "for this key"), 429, "rate_limited", "retry after 2 s",
			[2]string{"Retry-After", "2"}, slog.LevelDebug, false},
		{"bad request with a cause", badRequest("malformed form body", cause), 400, "invalid_request", "malformed form body", [2]string{}, slog.LevelInfo, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			w := httptest.NewRecorder()
			r := httptest.NewRequestWithContext(context.Background(), "POST", "/v1/sessions", nil)
			writeError(w, r, log, tt.err)
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != tt.status || body.Error != tt.code || !strings.Contains(body.Description, tt.desc) {
				t.Errorf("writeError = %d %+v, want %d %s %q", w.Code, body, tt.status, tt.code, tt.desc)
			}
			if strings.Contains(w.Body.String(), "password") {
				t.Errorf("the client was sent the cause: %s", w.Body)
			}
			if tt.header[0] != "" && w.Header().Get(tt.header[0]) != tt.header[1] {
				t.Errorf("%s = %q, want %q", tt.header[0], w.Header().Get(tt.header[0]), tt.header[1])
			}
			var rec map[string]any
			if err := json.Unmarshal(logs.Bytes(), &rec); err != nil {
				t.Fatalf("log %q: %v", logs.String(), err)
			}
			if rec["level"] != tt.level.String() || rec["status"] != float64(tt.status) || rec["error"] != tt.code {
				t.Errorf("log = %v, want level %s with status %d and code %s", rec, tt.level, tt.status, tt.code)
			}
			if logged := strings.Contains(fmt.Sprint(rec["cause"]), "password"); logged != tt.logsCause {
				t.Errorf("log cause = %v, want the cause logged: %v", rec["cause"], tt.logsCause)
			}
		})
	}
}
