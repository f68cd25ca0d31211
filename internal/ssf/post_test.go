package ssf

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/internal/store"
)

// signKeys "signs" a SET by wrapping its payload, so a receiver can see
// what was sent.
type signKeys struct{ sealKeys }

func (signKeys) EnsureEventKey(context.Context) error { return nil }

func (signKeys) SignEvent(_ context.Context, payload []byte) (string, error) {
	return "signed." + string(payload), nil
}

// TestPost: one SET POSTed to a real receiver (RFC 8935 §2): its media
// type, the stream's authorization header, any 2xx taken as acceptance,
// and anything else an error that says what the receiver answered.
func TestPost(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string // "" means accepted
	}{
		{"202 Accepted", http.StatusAccepted, "", ""},
		{"200 OK", http.StatusOK, "", ""},
		{"204 No Content", http.StatusNoContent, "", ""},
		{"400 with the receiver's reason", http.StatusBadRequest, `{"err":"invalid_key","description":"unknown kid"}`, `400 Bad Request {"err":"invalid_key"`},
		{"503", http.StatusServiceUnavailable, "down for maintenance\n", "503 Service Unavailable down for maintenance"},
		{"redirect", http.StatusFound, "", "302 Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type request struct {
				r    *http.Request
				body string
			}
			reqs := make(chan request, 1)
			rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				reqs <- request{r, string(b)}
				if tt.status == http.StatusFound {
					w.Header().Set("Location", "https://elsewhere.example.com/")
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer rx.Close()
			tr := New(nil, signKeys{}, Config{Issuer: testIssuer, InsecurePush: true})
			st := store.Stream{ID: "s1", Method: MethodPush, EndpointURL: rx.URL + "/events"}
			err := tr.post(context.Background(), st, "Bearer rx-secret", []byte(`{"jti":"s1.1"}`))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("post to a receiver answering %d = %v, want nil", tt.status, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("post to a receiver answering %d = %v, want an error containing %q", tt.status, err, tt.wantErr)
			}
			var got *http.Request
			var gotBody string
			select {
			case req := <-reqs:
				got, gotBody = req.r, req.body
			default:
				t.Fatal("the receiver got no request")
			}
			if got.Method != http.MethodPost || got.URL.Path != "/events" || got.Header.Get("Content-Type") != "application/secevent+jwt" ||
				got.Header.Get("Accept") != "application/json" || got.Header.Get("Authorization") != "Bearer rx-secret" {
				t.Errorf("request = %s %s, Content-Type %q, Accept %q, Authorization %q", got.Method, got.URL.Path,
					got.Header.Get("Content-Type"), got.Header.Get("Accept"), got.Header.Get("Authorization"))
			}
			if gotBody != `signed.{"jti":"s1.1"}` {
				t.Errorf("body = %q, want the signed SET", gotBody)
			}
		})
	}
}

// TestPostWithoutAuthorization: a stream without an authorization header
// sends none.
func TestPostWithoutAuthorization(t *testing.T) {
	auth := make(chan []string, 1)
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Values("Authorization")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer rx.Close()
	tr := New(nil, signKeys{}, Config{Issuer: testIssuer, InsecurePush: true})
	st := store.Stream{ID: "s1", Method: MethodPush, EndpointURL: rx.URL}
	h, err := tr.authHeader(st)
	if err != nil || h != "" {
		t.Fatalf("authHeader(no sealed header) = %q, %v, want none", h, err)
	}
	if err := tr.post(context.Background(), st, h, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got := <-auth; len(got) != 0 {
		t.Errorf("Authorization = %q, want none", got)
	}
}
