package console_test

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/console"
	"github.com/tegata-dev/tegata/internal/store"
)

// adminName is the bootstrap admin key's name, as the audit trail shows it.
func adminName(t *testing.T, e *env) string {
	t.Helper()
	keys, err := e.admin.APIKeys(ctx(t))
	if err != nil || len(keys) != 1 {
		t.Fatalf("APIKeys = %v, %v, want the bootstrap key", keys, err)
	}
	return keys[0].Name
}

func newSession(t *testing.T, e *env, sub, device string, claims map[string]any) client.Tokens {
	t.Helper()
	tok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: sub, Device: device, Claims: claims})
	if err != nil {
		t.Fatalf("CreateSession(%q) = %v", sub, err)
	}
	return tok
}

var seqLocation = regexp.MustCompile(`^/console/confirm\?`)

// TestRevokeFlow: find a user by prefix and by session id, sign one device
// out through the confirmation step, change the claims, and read both in
// the audit trail under the operator's key name, and in its exports.
func TestRevokeFlow(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for i := range 3 {
		newSession(t, e, "alice@example.com", fmt.Sprintf("phone %d", i), map[string]any{"roles": []string{"viewer"}})
	}
	bob := newSession(t, e, "bob@example.com", "laptop", nil)
	b := e.signedIn(t)

	res := b.get("/console/users?q=ali")
	wantStatus(t, "search ali", res, http.StatusOK)
	if !strings.Contains(res.body, `href="/console/user?sub=alice%40example.com"`) || strings.Contains(res.body, "bob@") {
		t.Errorf("search ali: want alice only\n%s", res.body)
	}
	res = b.get("/console/users?q=" + url.QueryEscape(bob.SessionID))
	if !strings.Contains(res.body, "belongs to") || !strings.Contains(res.body, "bob@example.com") {
		t.Errorf("search by bob's session id: want bob named\n%s", res.body)
	}

	ss, err := e.admin.Sessions(ctx(t), "alice@example.com")
	if err != nil || len(ss) != 3 {
		t.Fatalf("Sessions(alice) = %d, %v, want 3", len(ss), err)
	}
	if _, err := e.Store.BindSession(ctx(t), ss[1].ID, store.Binding{Kind: store.BindingDPoP, Thumbprint: "jkt",
		Key: []byte(`{"kty":"OKP"}`), BoundAt: e.clock.Now()}, e.clock.Now(), store.Actor{By: "system"}); err != nil {
		t.Fatal(err)
	}
	res = b.get("/console/user?sub=alice%40example.com")
	if n := strings.Count(res.body, "Sign out this device"); n != 3 {
		t.Errorf("alice's page offers %d device sign-outs, want 3", n)
	}
	if bound, unbound := strings.Count(res.body, `<td class="bound">dpop, since`), strings.Count(res.body, `<td class="bound">no</td>`); bound != 1 || unbound != 2 {
		t.Errorf("alice's page shows %d bound and %d unbound devices, want 1 and 2", bound, unbound)
	}
	form := url.Values{"op": {"device"}, "sub": {"alice@example.com"}, "sid": {ss[0].ID}}
	res = b.post("/console/user/revoke", form)
	wantStatus(t, "sign out a device, unconfirmed", res, http.StatusOK)
	if !strings.Contains(res.body, `name="confirmed" value="yes"`) {
		t.Errorf("the confirmation step lacks its form\n%s", res.body)
	}
	if after, _ := e.admin.Sessions(ctx(t), "alice@example.com"); len(after) != 3 {
		t.Fatalf("before confirming, alice has %d sessions, want 3", len(after))
	}
	form.Set("confirmed", "yes")
	form.Set("reason", "lost phone")
	res = b.post("/console/user/revoke", form)
	wantStatus(t, "sign out a device, confirmed", res, http.StatusSeeOther)
	loc := res.Header.Get("Location")
	if !seqLocation.MatchString(loc) {
		t.Fatalf("confirmed sign-out sent to %q, want the confirmation page", loc)
	}
	if after, _ := e.admin.Sessions(ctx(t), "alice@example.com"); len(after) != 2 {
		t.Errorf("after signing one device out, alice has %d sessions, want 2", len(after))
	}
	u, _ := url.Parse(loc)
	if _, asked := e.Store.Heard(); fmt.Sprint(asked) != u.Query().Get("seq") {
		t.Errorf("the sign-out's append was heard as asked for %d, want its seq %s: the page that follows waits for its confirmation", asked, u.Query().Get("seq"))
	}
	res = b.get(loc)
	if !strings.Contains(res.body, "In force on every verifier") {
		t.Errorf("confirmation page (no verifiers): want in force\n%s", res.body)
	}
	var c client.Confirmation
	res = b.get("/console/api/confirm?seq=" + u.Query().Get("seq"))
	if err := json.Unmarshal([]byte(res.body), &c); err != nil || !c.InForce {
		t.Errorf("api/confirm = %s (%v), want in force", res.body, err)
	}

	res = b.post("/console/user/revoke", url.Values{"op": {"claims"}, "sub": {"alice@example.com"},
		"claims": {`{"roles": ["admin"]}`}, "confirmed": {"yes"}})
	wantStatus(t, "change claims", res, http.StatusSeeOther)
	after, err := e.Store.ListSessions(ctx(t), "alice@example.com", e.clock.Now())
	if err != nil || len(after) != 2 {
		t.Fatalf("ListSessions(alice) = %d, %v, want 2", len(after), err)
	}
	for _, s := range after {
		if !strings.Contains(string(s.Claims), `"admin"`) {
			t.Errorf("after the role change session %s has claims %v", s.ID, s.Claims)
		}
	}
	res = b.post("/console/user/revoke", url.Values{"op": {"claims"}, "sub": {"alice@example.com"}, "claims": {`["admin"]`}, "confirmed": {"yes"}})
	wantStatus(t, "claims that are not an object", res, http.StatusBadRequest)

	actor := "api-key:" + adminName(t, e)
	res = b.get("/console/audit?actor=" + url.QueryEscape(actor))
	for _, want := range []string{"session.revoke", ss[0].ID, "lost phone", "subject.revoke"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("audit by %s lacks %q\n%s", actor, want, res.body)
		}
	}
	res = b.get("/console/audit/export?format=csv&action=session.revoke&actor=" + url.QueryEscape(actor))
	rows, err := csv.NewReader(strings.NewReader(res.body)).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][2] != actor || rows[1][5] != ss[0].ID {
		t.Errorf("CSV export = %q, %v, want the header and the device sign-out by %s", rows, err, actor)
	}
	if cd := res.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
		t.Errorf("CSV export Content-Disposition %q, want an attachment", cd)
	}
	res = b.get("/console/audit/export?format=json&target=alice%40example.com")
	var recs []map[string]any
	if err := json.Unmarshal([]byte(res.body), &recs); err != nil || len(recs) != 1 || recs[0]["action"] != "subject.revoke" {
		t.Errorf("JSON export for alice = %s (%v), want the claims change", res.body, err)
	}
}

// TestConsoleSubjectReserved: no app can open a session whose subject is
// an operator's console subject, so no user can pass for an operator.
func TestConsoleSubjectReserved(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	_, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: console.SubjectPrefix + "anything",
		Claims: map[string]any{"console_key": "anything", "console_key_name": "x", "console_since": 1}})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusBadRequest {
		t.Errorf("CreateSession(%q) = %v, want 400", console.SubjectPrefix+"anything", err)
	}
}

// hostile are values an attacker chooses: a user's subject, an app's
// device label (often the User-Agent) and claims.
var hostile = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(1)>`,
	`javascript:alert(1)`,
	"\u202egnp.exe\u202c",
	`'; --`,
	strings.Repeat("<b>", 85),
}

// TestHostileValues: subjects, devices and claims render as text on every
// page that shows them, never as markup or a link's target.
func TestHostileValues(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for i, v := range hostile {
		tok := newSession(t, e, v, v[:min(len(v), 198)], map[string]any{"note": "</textarea>" + v})
		if i == 0 {
			if _, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID, Reason: v}); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := e.signedIn(t)
	pages := []string{"/console/users?q=", "/console/users?q=%3C", "/console/audit", "/console/alerts"}
	for _, v := range hostile {
		pages = append(pages, "/console/user?sub="+url.QueryEscape(v), "/console/users?q="+url.QueryEscape(v))
		b.get("/console/user?sub=" + url.QueryEscape(v))
		res := b.post("/console/user/revoke", url.Values{"op": {"claims"}, "sub": {v}, "claims": {`{"x": "` + strings.ReplaceAll(v, `"`, `\"`) + `"}`}})
		checkText(t, "the confirmation step for "+v, res.body)
	}
	for _, p := range pages {
		res := b.get(p)
		wantStatus(t, p, res, http.StatusOK)
		checkText(t, p, res.body)
	}
	for _, p := range []string{"/console/users?q=%FF", "/console/users?q=a%00", "/console/users?q=a&after=%FE",
		"/console/audit?target=%FF", "/console/audit/export?format=csv&actor=%00", "/console/user?sub=%FF"} {
		if res := b.get(p); res.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", p, res.StatusCode)
		}
	}
	if res := b.post("/console/user/revoke", url.Values{"op": {"device"}, "sub": {"a"}, "sid": {"\xff"}, "confirmed": {"yes"}}); res.StatusCode != http.StatusBadRequest {
		t.Errorf("revoke session \\xff = %d, want 400", res.StatusCode)
	}
	res := b.get("/console/user?sub=" + url.QueryEscape(hostile[0]))
	if !strings.Contains(res.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the user page does not show the subject as text\n%s", res.body)
	}
	res = b.get("/console/user?sub=" + url.QueryEscape(hostile[1]))
	if !strings.Contains(res.body, `&lt;/textarea&gt;`) {
		t.Errorf("the claims do not show as text in the textarea\n%s", res.body)
	}
	res = b.get("/console/user?sub=" + url.QueryEscape(hostile[3]))
	if !strings.Contains(res.body, `<h1 class="subject">`+hostile[3]+`</h1>`) {
		t.Errorf("the bidi override is not isolated in its element (class subject: unicode-bidi isolate)\n%s", res.body)
	}
}

var hrefRE = regexp.MustCompile(`(?i)(href|src|action)="([^"]*)"`)

// checkText fails if body carries any hostile value as markup.
func checkText(t *testing.T, what, body string) {
	t.Helper()
	for _, bad := range []string{"<script>alert", "<img src=x", "</textarea><", "<b><b>"} {
		if strings.Contains(body, bad) {
			t.Errorf("%s: %q appears as markup", what, bad)
		}
	}
	for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
		if !strings.HasPrefix(m[2], "/console/") && m[2] != "" {
			t.Errorf("%s: %s=%q leaves the console", what, m[1], m[2])
		}
	}
}

// TestKeys: rotating the signing key goes through a confirmation and is
// audited under the operator; a new API key's secret is shown once, works,
// and is never shown again.
func TestKeys(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	b := e.signedIn(t)
	before, err := e.admin.Keys(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	b.get("/console/keys")
	res := b.post("/console/keys/rotate", nil)
	if !strings.Contains(res.body, "Rotate the signing key?") {
		t.Errorf("rotate without confirming: want the confirmation\n%s", res.body)
	}
	if now, _ := e.admin.Keys(ctx(t)); len(now) != len(before) {
		t.Fatalf("unconfirmed rotation made a key: %d keys, want %d", len(now), len(before))
	}
	wantStatus(t, "rotate, confirmed", b.post("/console/keys/rotate", url.Values{"confirmed": {"yes"}, "reason": {"yearly"}}), http.StatusSeeOther)
	if now, _ := e.admin.Keys(ctx(t)); len(now) != len(before)+1 {
		t.Errorf("after the rotation %d keys, want %d", len(now), len(before)+1)
	}
	res = b.get("/console/audit?action=key.add&actor=" + url.QueryEscape("api-key:"+adminName(t, e)))
	if !strings.Contains(res.body, "yearly") {
		t.Errorf("the rotation is not audited under the operator\n%s", res.body)
	}

	res = b.post("/console/apikeys", url.Values{"name": {"billing"}, "role": {"gate"}})
	m := regexp.MustCompile(`<pre id="new-secret">([^<]+)</pre>`).FindStringSubmatch(res.body)
	if m == nil {
		t.Fatalf("the new key's secret is not shown\n%s", res.body)
	}
	c := &client.Client{BaseURL: e.URL, APIKey: m[1]}
	if _, err := c.CreateSession(ctx(t), client.SessionRequest{Subject: "via-billing"}); err != nil {
		t.Errorf("the new gate key does not work: %v", err)
	}
	if res := b.get("/console/keys"); strings.Contains(res.body, m[1]) {
		t.Error("the keys page shows the secret again")
	}
}

// TestAlerts: a refresh token used twice (theft) shows on the alerts page,
// linked to its user, and counts on the overview; signing the user out
// everywhere through the console ends every session.
func TestAlerts(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	tok := newSession(t, e, "mallory-victim", "laptop", nil)
	newSession(t, e, "mallory-victim", "phone", nil)
	anon := &client.Client{BaseURL: e.URL}
	if _, err := anon.Refresh(ctx(t), tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute) // past the grace window: the second use is theft
	if _, err := anon.Refresh(ctx(t), tok.RefreshToken); err == nil {
		t.Fatal("reusing a spent refresh token worked")
	}
	b := e.signedIn(t)
	res := b.get("/console/alerts")
	if !strings.Contains(res.body, "Refresh token reuse") || !strings.Contains(res.body, `href="/console/user?sub=mallory-victim"`) ||
		!strings.Contains(res.body, tok.SessionID) {
		t.Errorf("alerts: want the reuse of %s linked to its user\n%s", tok.SessionID, res.body)
	}
	if res := b.get("/console/"); !strings.Contains(res.body, `<a href="/console/alerts">1</a>`) {
		t.Errorf("overview: want one theft detection in the last hour\n%s", res.body)
	}
	res = b.post("/console/user/revoke", url.Values{"op": {"everywhere"}, "sub": {"mallory-victim"}, "confirmed": {"yes"}})
	wantStatus(t, "sign out everywhere", res, http.StatusSeeOther)
	if ss, err := e.admin.Sessions(ctx(t), "mallory-victim"); err != nil || len(ss) != 0 {
		t.Errorf("after signing out everywhere: %d sessions (%v), want 0", len(ss), err)
	}
}
