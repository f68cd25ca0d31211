package ssf

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// TestEventOf: which CAEP event a log entry becomes (if any), about whom,
// and the initiating entity and admin reason every event carries.
func TestEventOf(t *testing.T) {
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	session := func(d store.EntryDetail) store.DetailedEntry {
		return store.DetailedEntry{Entry: revocation.Entry{Seq: 7, Kind: revocation.KindSession, Session: "sid-1", CreatedAt: created}, Detail: d}
	}
	subject := func(d store.EntryDetail) store.DetailedEntry {
		return store.DetailedEntry{Entry: revocation.Entry{Seq: 8, Kind: revocation.KindSubject, Subject: "alice", CreatedAt: created}, Detail: d}
	}
	user := `{"format":"iss_sub","iss":"` + testIssuer + `","sub":"alice"}`
	tests := []struct {
		name                   string
		entry                  store.DetailedEntry
		wantType               string // "" means no event
		wantSubID              string
		wantEntity, wantReason string
		wantClaims             string
	}{
		{"session revoked by an operator", session(store.EntryDetail{Cause: store.CauseSessionRevoke, Subject: "alice", Reason: "lost phone", Entity: "admin"}),
			EventSessionRevoked, `{"format":"complex","session":{"format":"opaque","id":"sid-1"},"user":` + user + `}`,
			"admin", "lost phone", ""},
		{"session signed out by the client", session(store.EntryDetail{Cause: store.CauseSessionRevoke, Subject: "alice", Entity: "user"}),
			EventSessionRevoked, `{"format":"complex","session":{"format":"opaque","id":"sid-1"},"user":` + user + `}`,
			"user", "Session revoked", ""},
		{"refresh token reused", session(store.EntryDetail{Cause: store.CauseSessionReuse, Subject: "alice"}),
			EventSessionRevoked, `{"format":"complex","session":{"format":"opaque","id":"sid-1"},"user":` + user + `}`,
			"system", "Refresh token reuse detected: session revoked", ""},
		{"device binding proof failed", session(store.EntryDetail{Cause: store.CauseBindingFailed, Subject: "alice"}),
			EventSessionRevoked, `{"format":"complex","session":{"format":"opaque","id":"sid-1"},"user":` + user + `}`,
			"system", "Device binding proof failed: session revoked", ""},
		{"session without a recorded subject", session(store.EntryDetail{}),
			EventSessionRevoked, `{"format":"complex","session":{"format":"opaque","id":"sid-1"}}`,
			"admin", "Session revoked", ""},
		{"subject signed out everywhere", subject(store.EntryDetail{Cause: store.CauseSubjectRevoke, EndSessions: true}),
			EventSessionRevoked, user, "admin", "All sessions of the user revoked", ""},
		{"access cutoff with new claims", subject(store.EntryDetail{Cause: store.CauseSubjectRevoke, Claims: json.RawMessage(`{"role":"viewer"}`), Entity: "policy"}),
			EventTokenClaimsChange, user, "policy", "Claims changed; earlier access tokens revoked", `{"role":"viewer"}`},
		{"access cutoff without claims", subject(store.EntryDetail{Cause: store.CauseSubjectRevoke}), "", "", "", "", ""},
		{"console session signed out", session(store.EntryDetail{Cause: store.CauseSessionRevoke, Subject: store.ConsoleSubjectPrefix + "k1", Entity: "admin"}), "", "", "", "", ""},
		{"console sessions of a revoked API key", store.DetailedEntry{Entry: revocation.Entry{Seq: 9, Kind: revocation.KindSubject, Subject: store.ConsoleSubjectPrefix + "k1", CreatedAt: created},
			Detail: store.EntryDetail{Cause: store.CauseSubjectRevoke, EndSessions: true}}, "", "", "", "", ""},
		{"access cutoff clearing the claims", subject(store.EntryDetail{Cause: store.CauseSubjectRevoke, Claims: json.RawMessage(`{}`)}), "", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := eventOf(tt.entry, testIssuer)
			if tt.wantType == "" {
				if ok {
					t.Fatalf("eventOf = %s, want no event", ev.typ)
				}
				return
			}
			if !ok || ev.typ != tt.wantType {
				t.Fatalf("eventOf = %q, %v, want %q", ev.typ, ok, tt.wantType)
			}
			if got, _ := json.Marshal(ev.subID); string(got) != tt.wantSubID {
				t.Errorf("sub_id = %s, want %s", got, tt.wantSubID)
			}
			if ev.body["initiating_entity"] != tt.wantEntity || ev.body["reason_admin"].(map[string]string)["en"] != tt.wantReason {
				t.Errorf("initiating_entity, reason_admin = %v, %v, want %q, %q", ev.body["initiating_entity"], ev.body["reason_admin"], tt.wantEntity, tt.wantReason)
			}
			if ev.body["event_timestamp"] != created.Unix() {
				t.Errorf("event_timestamp = %v, want %d (when the revocation was made)", ev.body["event_timestamp"], created.Unix())
			}
			if got, _ := json.Marshal(ev.body["claims"]); tt.wantClaims != "" && string(got) != tt.wantClaims {
				t.Errorf("claims = %s, want %s", got, tt.wantClaims)
			}
		})
	}
}

// TestEventSET: a SET's jti is the same each time the entry is sent to a
// stream (a receiver deduplicates by it), its txn is shared by the streams,
// and it carries one event with sub_id at the top level and no sub or exp.
func TestEventSET(t *testing.T) {
	e := store.DetailedEntry{Entry: revocation.Entry{Seq: 42, Kind: revocation.KindSession, Session: "sid-1"}}
	ev, _ := eventOf(e, testIssuer)
	now := time.Unix(1900000000, 0)
	set := func(stream string) map[string]any {
		b, err := eventSET(testIssuer, store.Stream{ID: stream, Audience: "urn:rx:" + stream}, e, ev, now)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("eventSET = %s: %v", b, err)
		}
		return m
	}
	a, again, b := set("A"), set("A"), set("B")
	if a["jti"] != "A.42" || again["jti"] != a["jti"] || b["jti"] != "B.42" {
		t.Errorf("jti = %v, %v (again), %v (stream B), want A.42 twice and B.42", a["jti"], again["jti"], b["jti"])
	}
	if a["txn"] != "revocation-42" || b["txn"] != a["txn"] {
		t.Errorf("txn = %v and %v, want revocation-42 for both streams", a["txn"], b["txn"])
	}
	if a["iss"] != testIssuer || a["aud"] != "urn:rx:A" || a["iat"] != float64(now.Unix()) {
		t.Errorf("iss, aud, iat = %v, %v, %v", a["iss"], a["aud"], a["iat"])
	}
	if _, ok := a["sub_id"]; !ok {
		t.Error("SET without a top-level sub_id")
	}
	for _, absent := range []string{"sub", "exp"} {
		if _, ok := a[absent]; ok {
			t.Errorf("SET carries %q, which the SSF profile leaves out", absent)
		}
	}
	if events, _ := a["events"].(map[string]any); len(events) != 1 || events[EventSessionRevoked] == nil {
		t.Errorf("events = %v, want exactly one session-revoked", a["events"])
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempts int
		base     time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{5, 16 * time.Second},
		{9, 256 * time.Second},
		{10, maxBackoff}, // 512 s, capped
		{19, maxBackoff},
		{20, maxBackoff},
		{1000, maxBackoff}, // no overflow of the shift
	}
	for _, tt := range tests {
		lo, hi := time.Duration(0.8*float64(tt.base)), time.Duration(1.2*float64(tt.base))
		for range 50 {
			if got := backoff(tt.attempts); got < lo || got > hi {
				t.Fatalf("backoff(%d) = %v, want within ±20%% of %v", tt.attempts, got, tt.base)
			}
		}
	}
}
