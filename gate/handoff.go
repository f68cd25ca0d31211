package gate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/verifier"
)

// Response headers by which an app signs a browser in or out. The gate
// removes them from the response, acts on them, and sets or clears the
// session cookies on that same response.
const (
	// HeaderLogin carries the JSON of a Login: sign this browser in as that
	// subject, in a new session.
	HeaderLogin = "X-Tegata-Login"
	// HeaderLogout is LogoutSession or LogoutEverywhere.
	HeaderLogout     = "X-Tegata-Logout"
	LogoutSession    = "session"    // sign this browser's session out
	LogoutEverywhere = "everywhere" // sign every session of the subject out
)

// Login is what an app sends in X-Tegata-Login after it has checked the
// user's credentials (password, passkey, SSO...).
type Login struct {
	Subject string `json:"subject"`
	// Claims go into every access token of the session (roles...).
	Claims map[string]any `json:"claims,omitempty"`
	// Device labels the session in the devices list. Empty: derived from
	// the request's User-Agent ("Firefox on Windows").
	Device string `json:"device,omitempty"`
}

// SetLogin puts l in h as the X-Tegata-Login header, JSON with every
// non-ASCII character escaped, so that any header transport carries it.
func SetLogin(h http.Header, l Login) error {
	if l.Subject == "" {
		return errors.New("gate: Login.Subject is required")
	}
	h.Set(HeaderLogin, asciiJSON(l))
	return nil
}

// SetLogout puts the X-Tegata-Logout header in h: this session, or every
// session of the subject when everywhere is true.
func SetLogout(h http.Header, everywhere bool) {
	v := LogoutSession
	if everywhere {
		v = LogoutEverywhere
	}
	h.Set(HeaderLogout, v)
}

// handoff is the ResponseWriter the app (or the proxy) writes to. When the
// header is about to be sent it carries out the app's X-Tegata-Logout and
// X-Tegata-Login, and adds the cookies the request's refresh or sign-out
// called for. If a sign-in or sign-out fails, the app's answer is replaced
// by 502 and its body discarded.
type handoff struct {
	http.ResponseWriter
	web     *Web
	r       *http.Request
	proxied bool             // the app is the gate's ReverseProxy (see Web.handler)
	claims  *verifier.Claims // the request's identity, nil if anonymous
	raw     string           // the access token claims were verified from
	cookies []*http.Cookie   // to set with the header
	clear   bool             // cookies are the clearing ones (sign-out)
	wrote   bool
	discard bool
}

// setSession queues cookies holding tok, and the browser's binding value
// bind (see cookieJar.session).
func (h *handoff) setSession(tok client.Tokens, bind string) error {
	c, err := h.web.jar.session(tok, bind)
	if err != nil {
		return err
	}
	h.cookies, h.clear = c, false
	return nil
}

// clearSession queues the cookies that delete the session's.
func (h *handoff) clearSession() { h.cookies, h.clear = h.web.jar.clear(), true }

func (h *handoff) Unwrap() http.ResponseWriter { return h.ResponseWriter }

func (h *handoff) WriteHeader(code int) {
	if h.wrote {
		return
	}
	switch {
	case code == http.StatusSwitchingProtocols:
		// A WebSocket library that writes its 101 through the header
		// (coder/websocket) and then hijacks the connection.
		h.wrote = true
		h.switching()
		h.ResponseWriter.WriteHeader(code)
		return
	case code >= 100 && code < 200:
		h.informational(code)
		return
	}
	h.wrote = true
	if err := h.act(); err != nil {
		h.fail(err)
		return
	}
	h.addCookies()
	unannounce(h.Header())
	h.ResponseWriter.WriteHeader(code)
}

// unannounce removes X-Tegata-* names from the Trailer header: finish
// drops their values, so the browser is not promised them.
func unannounce(hdr http.Header) {
	vals := hdr.Values("Trailer")
	if len(vals) == 0 {
		return
	}
	var kept []string
	for _, v := range vals {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" && !isTegataHeader(name) {
				kept = append(kept, name)
			}
		}
	}
	hdr.Del("Trailer")
	if len(kept) > 0 {
		hdr.Set("Trailer", strings.Join(kept, ", "))
	}
}

// addCookies puts the queued cookies in the header about to be sent.
func (h *handoff) addCookies() {
	hdr := h.Header()
	for _, c := range h.cookies {
		hdr.Add("Set-Cookie", c.String())
	}
	if len(h.cookies) > 0 {
		// Never store an answer that hands out or takes back a session.
		hdr.Set("Cache-Control", "no-store")
	}
}

// informational sends a 1xx (103 Early Hints) without the app's
// X-Tegata-Login and -Logout: they are for the gate, and only the final
// answer carries them out. They are put back for it (an in-process app's
// header map outlives a 1xx).
func (h *handoff) informational(code int) {
	hdr := h.Header()
	taken := takeHandoff(hdr)
	h.ResponseWriter.WriteHeader(code)
	maps.Copy(hdr, taken)
}

// switching prepares the header of a protocol switch (101, a WebSocket):
// the cookies of a refresh made for this request go with it, or the
// browser would keep a spent refresh token and later lose its session as
// theft. A 101 never signs anyone in or out: its handoff headers are
// dropped (and logged: the app meant something it did not get).
func (h *handoff) switching() {
	if taken := takeHandoff(h.Header()); len(taken) > 0 {
		h.web.logSwitchHandoff(h.r)
	}
	h.addCookies()
}

// Hijack hands the connection to a protocol switch. httputil.ReverseProxy
// then writes the upstream's 101 itself from this header map, without
// WriteHeader: the switch's cookies go into the map here, and the
// handoff is over (nothing is acted on when the handler returns).
func (h *handoff) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil && !h.wrote {
		h.wrote = true
		h.switching()
	}
	return conn, brw, err
}

func (h *handoff) Write(b []byte) (int, error) {
	if !h.wrote {
		h.WriteHeader(http.StatusOK)
	}
	if h.discard {
		return len(b), nil
	}
	return h.ResponseWriter.Write(b)
}

// Flush sends the header through handoff first, so that streaming answers
// (server-sent events) get their cookies too.
func (h *handoff) Flush() {
	if !h.wrote {
		h.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(h.ResponseWriter).Flush()
}

// finish writes the header if the handler returned without writing any,
// then drops every X-Tegata-* header left in the map: set after the
// header went out (by the app, or by httputil.ReverseProxy copying the
// upstream's trailers), it would be sent as a trailer, and a trailer
// never signs anyone in or out.
func (h *handoff) finish() {
	if !h.wrote {
		h.WriteHeader(http.StatusOK)
	}
	hdr := h.Header()
	for k := range hdr {
		if isTegataHeader(strings.TrimPrefix(k, http.TrailerPrefix)) {
			delete(hdr, k)
		}
	}
}

// upstreamResponse is the gate's ReverseProxy's ModifyResponse in front
// of an upstream. It keeps the app's handoff headers from the browser
// where handoff does not see them: the proxy writes a 101 itself after
// hijacking the connection, from the upstream's header, and announces the
// upstream's trailers (finish drops their values). Neither signs anyone in
// or out.
func (w *Web) upstreamResponse(res *http.Response) error {
	if res.StatusCode == http.StatusSwitchingProtocols && len(takeHandoff(res.Header)) > 0 {
		w.logSwitchHandoff(res.Request)
	}
	for k := range res.Trailer {
		if isTegataHeader(k) {
			delete(res.Trailer, k)
		}
	}
	return nil
}

// takeHandoff removes X-Tegata-Login and -Logout (in any case) from hdr
// and returns them.
func takeHandoff(hdr http.Header) http.Header {
	var taken http.Header
	for k, v := range hdr {
		if strings.EqualFold(k, HeaderLogin) || strings.EqualFold(k, HeaderLogout) {
			if taken == nil {
				taken = http.Header{}
			}
			taken[k] = v
			delete(hdr, k)
		}
	}
	return taken
}

// act carries out the app's X-Tegata-Logout, then its X-Tegata-Login (so
// an app can answer a password change with "everywhere" and a fresh
// session for this browser).
func (h *handoff) act() error {
	hdr := h.Header()
	login, logout := hdr.Get(HeaderLogin), hdr.Get(HeaderLogout)
	hdr.Del(HeaderLogin)
	hdr.Del(HeaderLogout)
	if login != "" && !h.web.mayLogin(h.r.URL.Path) {
		// Before any logout: the answer is refused as a whole.
		return &handoffError{HeaderLogin, fmt.Errorf("not accepted on the answer to %s: only on the login handoff paths %q "+
			"(--login-handoff-paths, WebConfig.LoginHandoffPaths)", h.r.URL.Path, h.web.handoff)}
	}
	if logout != "" {
		if err := h.logout(logout); err != nil {
			return err
		}
	}
	if login != "" {
		if err := h.login(login); err != nil {
			return err
		}
	}
	if logout != "" && login == "" {
		// Not with a login: it would delete the new cookies too.
		hdr.Set("Clear-Site-Data", `"cookies"`)
		hdr.Set("Cache-Control", "no-store")
	}
	return nil
}

// logout ends this session or all of the subject's and queues the clearing
// cookies. An anonymous request has nothing to end but its cookies.
func (h *handoff) logout(scope string) error {
	if scope != LogoutSession && scope != LogoutEverywhere {
		return &handoffError{HeaderLogout, fmt.Errorf("want %q or %q, got %q", LogoutSession, LogoutEverywhere, scope)}
	}
	if h.claims != nil {
		if err := h.web.endSessions(h.r.Context(), h.claims, scope == LogoutEverywhere); err != nil {
			return err
		}
	}
	h.claims = nil
	h.clearSession()
	return nil
}

// login creates a new session and queues its cookies. A session the
// browser already had is then revoked: a sign-in always gets a session id
// of its own (no fixation), and one browser holds one session.
func (h *handoff) login(raw string) error {
	l, err := parseLogin(raw)
	if err != nil {
		return &handoffError{HeaderLogin, err}
	}
	if l.Device == "" {
		l.Device = deviceLabel(h.r.UserAgent())
	}
	if err := h.web.checkCookieScheme(h.r); err != nil {
		return err // before a session exists: no orphan session is left behind
	}
	ctx, cancel := context.WithTimeout(h.r.Context(), authorityTimeout)
	defer cancel()
	tok, err := h.web.auth.CreateSession(ctx, client.SessionRequest{Subject: l.Subject, Device: l.Device, Claims: l.Claims})
	var ce *client.Error
	if errors.As(err, &ce) && errors.Is(err, client.ErrInvalidRequest) {
		// The subject or claims the app sent (reserved, too large...): the
		// app's fault, as much as a malformed header.
		return &handoffError{HeaderLogin, fmt.Errorf("the authority refused it: %s", ce.Description)}
	}
	if err != nil {
		return err
	}
	if err := h.setSession(tok, newBind()); err != nil {
		h.web.revokeQuietly(ctx, tok.SessionID, "session too large for a cookie")
		return err
	}
	h.web.offerRegistration(h.Header(), tok)
	if old := h.claims; old != nil && old.SessionID() != tok.SessionID {
		if err := h.web.endSessions(h.r.Context(), old, false); err != nil {
			h.web.log.WarnContext(ctx, "gate: sign-in: the browser's previous session could not be revoked",
				"sid", old.SessionID, "err", err)
		}
	}
	h.web.log.DebugContext(ctx, "gate: signed in", "sid", tok.SessionID)
	return nil
}

// parseLogin decodes X-Tegata-Login strictly: an unknown field is a typo
// in the app (a "subjcet" would otherwise sign nobody in), so it fails.
// The header is JSON in printable ASCII, every other character escaped as
// \uXXXX (what SetLogin sends): a non-ASCII byte is refused rather than
// decoded, since Node and Python put a string's characters on the wire as
// Latin-1 bytes, which JSON would read as U+FFFD, making "zoé" and "zoë"
// one subject.
func parseLogin(raw string) (Login, error) {
	var l Login
	if err := checkLoginASCII(raw); err != nil {
		return l, err
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return l, fmt.Errorf("not the JSON of a login: %w", err)
	}
	if dec.More() {
		return l, errors.New("data after its JSON object")
	}
	if l.Subject == "" {
		return l, errors.New(`no "subject"`)
	}
	return l, nil
}

// errLoginEncoding is wrapped by the error of an X-Tegata-Login that is
// not printable ASCII.
var errLoginEncoding = errors.New("not in the header's encoding: JSON in printable ASCII, every other character " +
	`escaped as \uXXXX (gate.SetLogin and @tegata/node's signIn send it so; in JavaScript, ` +
	`JSON.stringify(login).replace(/[\u007f-\uffff]/g, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')))`)

func checkLoginASCII(raw string) error {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return fmt.Errorf("byte %#02x at offset %d is %w", c, i, errLoginEncoding)
		}
	}
	return nil
}

// handoffError: the app's header was malformed, or asked for what the
// authority refuses (a bug in the app, not something a retry fixes).
type handoffError struct {
	header string // HeaderLogin or HeaderLogout
	err    error
}

func (e *handoffError) Error() string {
	return fmt.Sprintf("the app's %s was refused: %v", e.header, e.err)
}
func (e *handoffError) Unwrap() error { return e.err }

// fail replaces the app's answer: the browser must not believe it signed in
// or out when it did not. Cookies already due (a refresh this request made)
// are still set, so a spent refresh token is not left in the browser. An
// app's mistake is logged at Error with the path of the answer that carried
// it and named in the answer (the developer trying their sign-in sees it);
// a failure of the authority says to try again.
func (h *handoff) fail(err error) {
	ctx := h.r.Context()
	desc := "the session could not be changed; try again"
	var he *handoffError
	switch {
	case errors.As(err, &he):
		h.web.log.ErrorContext(ctx, "gate: the app's "+he.header+" was refused", "why", he.err, "path", h.r.URL.Path, "method", h.r.Method)
		desc = he.Error()
	case errors.Is(err, errCookieTooLarge):
		h.web.log.ErrorContext(ctx, "gate: sign-in failed", "err", err, "path", h.r.URL.Path)
	case errors.Is(err, errSecureOnPlainHTTP):
		h.web.log.ErrorContext(ctx, "gate: sign-in refused", "err", err, "origin", h.r.Header.Get("Origin"))
		desc = err.Error()
	default:
		h.web.logAuthorityError(ctx, "sign-in/sign-out", err)
	}
	hdr := h.Header()
	clear(hdr)
	if h.clear {
		h.cookies = nil // a failed sign-out keeps the session, so it can be retried
	}
	for _, c := range h.cookies {
		hdr.Add("Set-Cookie", c.String())
	}
	h.discard = true
	httperr.Write(h.ResponseWriter, http.StatusBadGateway, "bad_gateway", desc)
}
