package ssf

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/internal/store"
)

const testIssuer = "https://auth.example.com"

// sealKeys seals by prefixing: enough to see that a header was sealed, and
// for what stream.
type sealKeys struct{ Keys }

func (sealKeys) SealReceiverSecret(secret []byte, streamID string) []byte {
	return append([]byte("sealed("+streamID+"):"), secret...)
}

func newTestTransmitter(insecure bool) *Transmitter {
	return New(nil, sealKeys{}, Config{Issuer: testIssuer, InsecurePush: insecure})
}

func ptr[T any](v T) *T { return &v }

// wantBadRequest checks that err is the 400 *Error SSF prescribes, and
// that its description says what is wrong.
func wantBadRequest(t *testing.T, call string, err error, desc string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != "invalid_request" || !strings.Contains(e.Description, desc) {
		t.Errorf("%s = %v, want 400 invalid_request containing %q", call, err, desc)
	}
}

// TestApplyRefuses: every member of a stream request a receiver supplies
// is validated, and every member the transmitter supplies must match when
// sent back, each with a 400 that names the member.
func TestApplyRefuses(t *testing.T) {
	push := &DeliveryConfig{Method: MethodPush, EndpointURL: "https://rx.example.com/events"}
	tests := []struct {
		name string
		req  StreamRequest
		desc string
	}{
		{"unknown method", StreamRequest{Delivery: &DeliveryConfig{Method: "urn:example:carrier-pigeon"}}, "delivery.method must be"},
		{"poll with an endpoint", StreamRequest{Delivery: &DeliveryConfig{Method: MethodPoll, EndpointURL: "https://rx.example.com/"}}, "supplied by the transmitter"},
		{"push without an endpoint", StreamRequest{Delivery: &DeliveryConfig{Method: MethodPush}}, "delivery.endpoint_url: is required"},
		{"push to loopback", StreamRequest{Delivery: &DeliveryConfig{Method: MethodPush, EndpointURL: "https://127.0.0.1/"}}, "not a public address"},
		{"push over http", StreamRequest{Delivery: &DeliveryConfig{Method: MethodPush, EndpointURL: "http://rx.example.com/"}}, "must be an https:// URL"},
		{"too many events", StreamRequest{Delivery: push, EventsRequested: ptr(slices.Repeat([]string{EventSessionRevoked}, maxEvents+1))}, "events_requested"},
		{"empty event", StreamRequest{Delivery: push, EventsRequested: ptr([]string{""})}, "events_requested"},
		{"event URI too long", StreamRequest{Delivery: push, EventsRequested: ptr([]string{strings.Repeat("e", maxEventURI+1)})}, "events_requested"},
		{"description too long", StreamRequest{Delivery: push, Description: ptr(strings.Repeat("d", maxDescription+1))}, "description"},
		{"description with a control character", StreamRequest{Delivery: push, Description: ptr("line\nbreak")}, "description"},
		{"description not UTF-8", StreamRequest{Delivery: push, Description: ptr("\xff")}, "description"},
		{"another issuer", StreamRequest{Delivery: push, Iss: ptr("https://other.example.com")}, "iss does not match"},
		{"other events supported", StreamRequest{Delivery: push, EventsSupported: ptr([]string{EventSessionRevoked})}, "events_supported does not match"},
		{"other events delivered", StreamRequest{Delivery: push, EventsRequested: ptr([]string{EventSessionRevoked}),
			EventsDelivered: ptr([]string{EventTokenClaimsChange})}, "events_delivered does not match"},
		{"other verification interval", StreamRequest{Delivery: push, MinVerificationInterval: ptr(1)}, "min_verification_interval does not match"},
		{"poll stream without a poll key", StreamRequest{Delivery: &DeliveryConfig{Method: MethodPoll}}, "tegata_poll_key is required"},
		{"no delivery (poll) without a poll key", StreamRequest{}, "tegata_poll_key is required"},
	}
	tr := newTestTransmitter(false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st store.Stream
			wantBadRequest(t, "apply("+tt.name+")", tr.apply(&st, tt.req, true), tt.desc)
		})
	}
}

// TestApplyAccepts: what a receiver may send, including the members the
// transmitter supplies sent back unchanged, and what the stream becomes.
func TestApplyAccepts(t *testing.T) {
	tests := []struct {
		name   string
		start  store.Stream // the stream before the request
		req    StreamRequest
		decide bool
		want   store.Stream
	}{
		{"no delivery means poll", store.Stream{}, StreamRequest{TegataPollKey: ptr("key-1")}, true, store.Stream{Method: MethodPoll, PollKey: "key-1"}},
		{"push", store.Stream{}, StreamRequest{Delivery: &DeliveryConfig{Method: MethodPush, EndpointURL: "https://rx.example.com/e"}}, true,
			store.Stream{Method: MethodPush, EndpointURL: "https://rx.example.com/e"}},
		{"supplied members sent back", store.Stream{}, StreamRequest{TegataPollKey: ptr("key-1"), Iss: ptr(testIssuer), EventsSupported: ptr(slices.Clone(EventsSupported)),
			EventsDelivered: ptr(slices.Clone(EventsSupported)), MinVerificationInterval: ptr(int(MinVerifyEvery.Seconds()))}, true,
			store.Stream{Method: MethodPoll, PollKey: "key-1"}},
		{"events and description", store.Stream{}, StreamRequest{TegataPollKey: ptr("key-1"), EventsRequested: ptr([]string{EventTokenClaimsChange, "urn:example:unknown"}),
			Description: ptr("billing's receiver")}, true,
			store.Stream{Method: MethodPoll, PollKey: "key-1", Events: []string{EventTokenClaimsChange, "urn:example:unknown"}, Description: "billing's receiver"}},
		{"poll key of a poll stream", store.Stream{}, StreamRequest{TegataPollKey: ptr("key-1")}, true, store.Stream{Method: MethodPoll, PollKey: "key-1"}},
		{"poll key dropped for push", store.Stream{}, StreamRequest{Delivery: &DeliveryConfig{Method: MethodPush, EndpointURL: "https://rx.example.com/"},
			TegataPollKey: ptr("key-1")}, true, store.Stream{Method: MethodPush, EndpointURL: "https://rx.example.com/"}},
		{"update without delivery keeps it", store.Stream{}, StreamRequest{Description: ptr("new")}, false, store.Stream{Description: "new"}},
		{"poll stream keeps its key", store.Stream{Method: MethodPoll, PollKey: "kept"}, StreamRequest{Delivery: &DeliveryConfig{Method: MethodPoll}}, false, store.Stream{Method: MethodPoll, PollKey: "kept"}},
	}
	tr := newTestTransmitter(false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.start
			if err := tr.apply(&st, tt.req, tt.decide); err != nil {
				t.Fatalf("apply = %v, want nil", err)
			}
			if st.Method != tt.want.Method || st.EndpointURL != tt.want.EndpointURL || !slices.Equal(st.Events, tt.want.Events) ||
				st.Description != tt.want.Description || st.PollKey != tt.want.PollKey {
				t.Errorf("apply = %+v, want %+v", st, tt.want)
			}
		})
	}
}

func TestAudience(t *testing.T) {
	tr := newTestTransmitter(false)
	push := store.Stream{ID: "s1", Method: MethodPush, EndpointURL: "https://rx.example.com/e"}
	poll := store.Stream{ID: "s2", Method: MethodPoll}
	tests := []struct {
		name    string
		st      store.Stream
		aud     *string
		want    string
		wantErr bool
	}{
		{"push default: the endpoint", push, nil, "https://rx.example.com/e", false},
		{"poll default: the poll endpoint", poll, nil, testIssuer + "/ssf/poll/s2", false},
		{"chosen", push, ptr("urn:example:billing"), "urn:example:billing", false},
		{"empty", push, ptr(""), "", true},
		{"too long", push, ptr(strings.Repeat("a", maxURL+1)), "", true},
		{"control character", push, ptr("a\x00b"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tr.audience(tt.st, tt.aud)
			if tt.wantErr {
				wantBadRequest(t, "audience", err, "aud must be")
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("audience = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

// TestSealHeader: the authorization header is kept sealed for its stream,
// only for push, and only as printable ASCII.
func TestSealHeader(t *testing.T) {
	tr := newTestTransmitter(false)
	push := store.Stream{ID: "s1", Method: MethodPush}
	st := push
	if err := tr.sealHeader(&st, &DeliveryConfig{AuthorizationHeader: "Bearer rx-secret"}); err != nil {
		t.Fatalf("sealHeader = %v", err)
	}
	if string(st.AuthHeader) != "sealed(s1):Bearer rx-secret" {
		t.Errorf("sealHeader stored %q, want the header sealed for stream s1", st.AuthHeader)
	}
	st.AuthHeader = []byte("old")
	if err := tr.sealHeader(&st, &DeliveryConfig{}); err != nil || st.AuthHeader != nil {
		t.Errorf("sealHeader(no header) = %v, kept %q, want nil and none", err, st.AuthHeader)
	}
	tests := []struct {
		name   string
		st     store.Stream
		header string
		desc   string
	}{
		{"poll", store.Stream{ID: "s2", Method: MethodPoll}, "Bearer x", "push delivery only"},
		{"newline", push, "Bearer x\r\nX-Injected: 1", "printable ASCII"},
		{"non-ASCII", push, "Bearer é", "printable ASCII"},
		{"too long", push, "Bearer " + strings.Repeat("x", maxAuthHeader), "printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st
			wantBadRequest(t, "sealHeader("+tt.name+")", tr.sealHeader(&st, &DeliveryConfig{AuthorizationHeader: tt.header}), tt.desc)
		})
	}
}

// TestRequestsRefusedBeforeTheStore: malformed status changes, verification
// requests and creations are refused before the store is read (the
// Transmitter here has none).
func TestRequestsRefusedBeforeTheStore(t *testing.T) {
	tr := newTestTransmitter(false)
	ctx := context.Background()
	_, err := tr.SetStatus(ctx, StatusBody{StreamID: "s", Status: "stopped"})
	wantBadRequest(t, `SetStatus("stopped")`, err, "status must be")
	_, err = tr.SetStatus(ctx, StatusBody{StreamID: "s", Status: StatusPaused, Reason: strings.Repeat("r", maxDescription+1)})
	wantBadRequest(t, "SetStatus(long reason)", err, "reason must be")
	_, err = tr.SetStatus(ctx, StatusBody{StreamID: "s", Status: StatusPaused, Reason: "a\x1b[31m"})
	wantBadRequest(t, "SetStatus(reason with ESC)", err, "reason must be")
	wantBadRequest(t, "Verify(no stream_id)", tr.Verify(ctx, VerifyRequest{}), "stream_id is required")
	wantBadRequest(t, "Verify(long state)", tr.Verify(ctx, VerifyRequest{StreamID: "s", State: strings.Repeat("s", maxState+1)}), "state must be")
	_, err = tr.Create(ctx, StreamRequest{StreamID: ptr("mine")})
	wantBadRequest(t, "Create(with stream_id)", err, "chosen by the transmitter")
	_, err = tr.Update(ctx, StreamRequest{}, false)
	wantBadRequest(t, "Update(no stream_id)", err, "stream_id is required")
	wantBadRequest(t, "Delete(no stream_id)", tr.Delete(ctx, ""), "stream_id is required")
}

func TestDelivered(t *testing.T) {
	tests := []struct {
		name      string
		requested []string
		want      []string
	}{
		{"none in particular: every supported one", nil, EventsSupported},
		{"an empty list: none", []string{}, []string{}},
		{"one", []string{EventTokenClaimsChange}, []string{EventTokenClaimsChange}},
		{"in the supported order", []string{EventTokenClaimsChange, EventSessionRevoked}, EventsSupported},
		{"unknown types dropped", []string{"urn:example:unknown", EventSessionRevoked}, []string{EventSessionRevoked}},
		{"verification is not requested", []string{EventVerification}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := delivered(tt.requested); !slices.Equal(got, tt.want) {
				t.Errorf("delivered(%q) = %q, want %q", tt.requested, got, tt.want)
			}
		})
	}
}

func TestMayPoll(t *testing.T) {
	tests := []struct {
		name    string
		pollKey string
		caller  string
		want    bool
	}{
		{"the stream's key", "key-1", "key-1", true},
		{"another key", "key-1", "key-2", false},
		{"a stream naming no key", "", "key-1", false},
		{"no key at all", "", "", false},
	}
	for _, tt := range tests {
		if got := (Poller{KeyID: tt.caller}).mayPoll(store.Stream{PollKey: tt.pollKey}); got != tt.want {
			t.Errorf("%s: mayPoll(key %q, stream key %q) = %v, want %v", tt.name, tt.caller, tt.pollKey, got, tt.want)
		}
	}
}
