package gate

import (
	"errors"
	"net/http"
	"testing"
)

func TestDeviceLabel(t *testing.T) {
	tests := []struct{ ua, want string }{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0", "Firefox on Windows"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15", "Safari on macOS"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36", "Chrome on Linux"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/140.0 Mobile/15E148 Safari/604.1", "Chrome on iPhone"},
		{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0 Mobile Safari/537.36", "Samsung Internet on Android"},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36 OPR/110.0", "Opera on ChromeOS"},
		{"curl/8.5.0", "Unknown browser"},
		{"", "Unknown browser"},
		{"SomeBot (Linux)", "Browser on Linux"},
	}
	for _, tt := range tests {
		if got := deviceLabel(tt.ua); got != tt.want {
			t.Errorf("deviceLabel(%q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

func TestCookieStrip(t *testing.T) {
	j, err := newCookieJar(false, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []string
		want string // "" = no Cookie header left
	}{
		{"only ours", []string{"__Host-tegata-at=a.b.c; __Host-tegata-rt=xyz"}, ""},
		{"others kept verbatim", []string{`theme=dark; __Host-tegata-at=a.b.c; q="quoted"`}, `theme=dark; q="quoted"`},
		{"several lines", []string{"a=1", "__Host-tegata-rt=x; b=2"}, "a=1; b=2"},
		{"a prefix of our name is not ours", []string{"__Host-tegata-atx=1"}, "__Host-tegata-atx=1"},
	}
	for _, tt := range tests {
		h := http.Header{"Cookie": tt.in}
		j.strip(h)
		if got := h.Get("Cookie"); got != tt.want || len(h.Values("Cookie")) > 1 {
			t.Errorf("%s: strip(%q) = %q, want %q", tt.name, tt.in, h.Values("Cookie"), tt.want)
		}
	}
}

func TestLoginHeaderRoundTrip(t *testing.T) {
	h := http.Header{}
	in := Login{Subject: "zoë", Claims: map[string]any{"name": "Zoë 🦊", "roles": []any{"a"}}, Device: "Zoë's phone"}
	if err := SetLogin(h, in); err != nil {
		t.Fatal(err)
	}
	raw := h.Get(HeaderLogin)
	for i := 0; i < len(raw); i++ {
		if raw[i] < 0x20 || raw[i] > 0x7e {
			t.Fatalf("SetLogin header %q has byte %#x, want printable ASCII only", raw, raw[i])
		}
	}
	out, err := parseLogin(raw)
	if err != nil || out.Subject != in.Subject || out.Device != in.Device || out.Claims["name"] != "Zoë 🦊" {
		t.Errorf("parseLogin(SetLogin(%+v)) = %+v, %v", in, out, err)
	}
	if err := SetLogin(h, Login{}); err == nil {
		t.Error("SetLogin without a subject = nil, want an error")
	}
	for _, bad := range []string{`{"subject":"a"} {"subject":"b"}`, `{"subject":"a","extra":1}`, `{"subject":""}`, `[]`} {
		if _, err := parseLogin(bad); err == nil {
			t.Errorf("parseLogin(%q) = nil error, want one", bad)
		}
	}
}

func TestLoginHeaderEncoding(t *testing.T) {
	tests := []struct {
		name, raw string
		want      string // the subject, or "" for a refusal naming the encoding
	}{
		{"escaped", `{"subject":"zo\u00e9"}`, "zoé"},
		{"escaped beyond the BMP", `{"subject":"\ud83e\udd8a"}`, "🦊"},
		{"Latin-1 bytes, as Node sends JSON.stringify", "{\"subject\":\"zo\xe9\"}", ""},
		{"UTF-8 bytes", `{"subject":"zoé"}`, ""},
		{"a control character", "{\"subject\":\"a\x01\"}", ""},
	}
	for _, tt := range tests {
		l, err := parseLogin(tt.raw)
		switch {
		case tt.want == "" && !errors.Is(err, errLoginEncoding):
			t.Errorf("%s: parseLogin(%q) = %+v, %v, want an error naming the encoding", tt.name, tt.raw, l, err)
		case tt.want != "" && (err != nil || l.Subject != tt.want):
			t.Errorf("%s: parseLogin(%q) = %+v, %v, want subject %q", tt.name, tt.raw, l, err, tt.want)
		}
	}
}

func TestPublicPaths(t *testing.T) {
	w := &Web{public: []string{"/login", "/assets/"}}
	tests := []struct {
		path string
		want bool
	}{
		{"/login", true}, {"/login/", true}, {"/login/totp", true}, {"/login2", false},
		{"/assets/", true}, {"/assets/a.css", true}, {"/assets", false},
		{"/assets/../admin", false}, {"/assets/./a.css", true}, {"/assets//a.css", true},
		{"/login/../admin", false}, {"/", false}, {"/admin", false},
	}
	for _, tt := range tests {
		if got := w.isPublic(tt.path); got != tt.want {
			t.Errorf("isPublic(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
	all := &Web{public: []string{"/"}}
	if !all.isPublic("/anything/at/all") {
		t.Error(`with public prefix "/", isPublic("/anything/at/all") = false, want true`)
	}
}

func TestAcceptsHTML(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
		{"TEXT/HTML", true},
		{"application/json", false},
		{"*/*", false},
		{"", false},
		{"text/htmlx", false},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("GET", "/", nil)
		if tt.accept != "" {
			r.Header.Set("Accept", tt.accept)
		}
		if got := acceptsHTML(r); got != tt.want {
			t.Errorf("acceptsHTML(Accept: %q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
}
