package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/pgtest/migrated"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/verifier"
)

func TestBulkRevocation(t *testing.T) {
	t.Parallel()
	bulkRevocation(t, start(t, nil))
}

func TestBulkRevocationPostgres(t *testing.T) {
	t.Parallel()
	dsn := migrated.Schema(t)
	bulkRevocation(t, start(t, func(c *server.Config) { c.DB = dsn }))
}

// bulkRevocation revokes sessions and subjects in one call: every item's
// tokens are refused at once, the answer gives each item's seq, and the
// audit trail has one record per item.
func bulkRevocation(t *testing.T, e *env) {
	var toks []client.Tokens
	for _, sub := range []string{"ann", "bea b", "bea b", "cid"} { // inner spaces are fine
		tk, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: sub})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tk)
	}
	keep, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "dee"})
	items := []client.RevokeItem{
		{SessionID: toks[0].SessionID},
		{Subject: "bea b"},
		{SessionID: toks[1].SessionID}, // ended by the item before
		{Subject: "cid", Scope: "access", Claims: map[string]any{"roles": []string{"viewer"}}},
		{Subject: "nobody"}, // no session: recorded, and the answer says it found none
	}
	got, err := e.admin.RevokeMany(ctx(t), client.BulkRevocation{Items: items, Reason: "incident 42"})
	if err != nil {
		t.Fatalf("RevokeMany = %v", err)
	}
	head, _ := e.Store.Head(ctx(t))
	want := []client.ItemOutcome{{Revoked: true, Seq: head - 3, Sessions: 1}, {Revoked: true, Seq: head - 2, Sessions: 2}, {},
		{Revoked: true, Seq: head - 1, Sessions: 1}, {Revoked: true, Seq: head, Sessions: 0}}
	if fmt.Sprint(got.Items) != fmt.Sprint(want) {
		t.Fatalf("RevokeMany = %v, want %v", got, want)
	}
	v := e.Authority.Verifier()
	for i, tk := range toks {
		if _, err := v.Verify(ctx(t), tk.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
			t.Errorf("Verify(token %d) after RevokeMany = %v, want ErrRevoked", i, err)
		}
	}
	if _, err := v.Verify(ctx(t), keep.AccessToken); err != nil {
		t.Errorf("Verify(unrelated token) = %v, want nil", err)
	}
	// cid's session lives on (scope access) and its next token carries the new claims.
	next, err := e.anon.Refresh(ctx(t), toks[3].RefreshToken)
	if err != nil {
		t.Fatalf("Refresh(cid) after an access cutoff = %v", err)
	}
	if c, err := v.Verify(ctx(t), next.AccessToken); err != nil || !c.Has("roles", "viewer") || c.Has("roles", "admin") {
		t.Errorf("Verify(cid's next token) = %v, %v, want roles [viewer]", c, err)
	}
	var recs []string
	for _, r := range auditRecords(t, e) {
		if r.Reason == "incident 42" {
			recs = append(recs, r.Action+" "+r.Target)
		}
	}
	wantRecs := []string{"session.revoke " + toks[0].SessionID, "subject.revoke bea b", "subject.revoke cid", "subject.revoke nobody"}
	if fmt.Sprint(recs) != fmt.Sprint(wantRecs) {
		t.Errorf("audit records = %q, want %q", recs, wantRecs)
	}
}

type auditRecord struct{ Action, Target, Reason string }

func auditRecords(t *testing.T, e *env) []auditRecord {
	t.Helper()
	var out struct{ Records []auditRecord }
	if err := e.admin.Do(ctx(t), "GET", "/v1/audit", nil, &out); err != nil {
		t.Fatal(err)
	}
	return out.Records
}

func TestBulkRevocationAllOrNothing(t *testing.T) {
	t.Parallel()
	bulkAllOrNothing(t, start(t, nil))
}

func TestBulkRevocationAllOrNothingPostgres(t *testing.T) {
	t.Parallel()
	dsn := migrated.Schema(t)
	bulkAllOrNothing(t, start(t, func(c *server.Config) { c.DB = dsn }))
}

// bulkAllOrNothing: a bad item fails the whole request with its index
// named, and nothing of it is written.
func bulkAllOrNothing(t *testing.T, e *env) {
	tk, _ := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "eve"})
	good := client.RevokeItem{SessionID: tk.SessionID}
	many := make([]client.RevokeItem, client.MaxRevokeItems+1)
	for i := range many {
		many[i] = client.RevokeItem{Subject: fmt.Sprint("u", i)}
	}
	tests := []struct {
		name   string
		items  []client.RevokeItem
		status int
		code   string
		desc   string
	}{
		{"unknown session", []client.RevokeItem{good, {Subject: "eve"}, {SessionID: "nope"}}, 404, "not_found", "items[2]: no such session"},
		{"bad scope", []client.RevokeItem{good, {Subject: "eve", Scope: "all"}}, 400, "invalid_request", "items[1]: scope must be"},
		{"empty item", []client.RevokeItem{good, {}}, 400, "invalid_request", "items[1]: subject is required"},
		{"subject with surrounding whitespace", []client.RevokeItem{good, {Subject: " eve"}}, 400, "invalid_request", `items[1]: subject " eve" has leading or trailing whitespace`},
		{"session and subject", []client.RevokeItem{{SessionID: tk.SessionID, Subject: "eve"}}, 400, "invalid_request", "items[0]: a session item has session_id only"},
		{"reserved claim", []client.RevokeItem{good, {Subject: "eve", Claims: map[string]any{"sub": "root"}}}, 400, "invalid_request", `items[1]: claim "sub" is reserved`},
		{"no items", nil, 400, "invalid_request", "items must hold 1 to 10000"},
		{"too many items", many, 400, "invalid_request", "items must hold 1 to 10000"},
	}
	head, _ := e.Store.Head(ctx(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.admin.RevokeMany(ctx(t), client.BulkRevocation{Items: tt.items})
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Status != tt.status || ce.Code != tt.code || !strings.HasPrefix(ce.Description, tt.desc) {
				t.Fatalf("RevokeMany = %v, want %d %s %q...", err, tt.status, tt.code, tt.desc)
			}
		})
	}
	if h, _ := e.Store.Head(ctx(t)); h != head {
		t.Fatalf("log head moved from %d to %d: a refused bulk revocation wrote entries", head, h)
	}
	if _, err := e.Authority.Verifier().Verify(ctx(t), tk.AccessToken); err != nil {
		t.Fatalf("Verify(eve's token) after refused bulk revocations = %v, want nil", err)
	}
	for _, r := range auditRecords(t, e) {
		if strings.HasSuffix(r.Action, ".revoke") {
			t.Errorf("audit record %+v after refused bulk revocations", r)
		}
	}
}

// TestBulkRevocationBody: the bulk endpoint takes bodies far larger than the
// others, up to its own cap, and decodes them strictly.
func TestBulkRevocationBody(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	// The largest bulk the API takes; under the race detector (where the
	// embedded SQLite runs ~30× slower) a tenth of it, still over the cap.
	n := 10_000
	if testtime.Race {
		n = 1_000
	}
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"subject":"user-%06d@department-of-examples.example.com","scope":"access"}`, i)
	}
	body := `{"items":[` + strings.Join(items, ",") + `],"reason":"big"}`
	if len(body) < 64<<10 {
		t.Fatalf("body of %d bytes is not larger than the other endpoints' cap", len(body))
	}
	tests := []struct {
		name, body string
		status     int
	}{
		{fmt.Sprintf("%d items", n), body, 200},
		{"unknown field", `{"items":[{"subject":"x","sid":"y"}]}`, 400},
		{"items not a list", `{"items":{"subject":"x"}}`, 400},
		{"over the cap", `{"items":[{"subject":"` + strings.Repeat("x", 9<<20) + `"}]}`, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.URL+"/v1/revocations", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+e.APIKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct{ Items []client.ItemOutcome }
			_ = json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != tt.status {
				t.Fatalf("POST /v1/revocations = %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 200 && (len(out.Items) != n || !out.Items[n-1].Revoked) {
				t.Fatalf("answer has %d items, want %d revoked", len(out.Items), n)
			}
		})
	}
}
