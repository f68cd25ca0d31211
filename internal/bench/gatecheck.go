package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tegata-dev/tegata/client"
)

// errRejected is an /auth answer other than 200 or a 401 for revocation.
var errRejected = errors.New("gate refused the token for another reason than revocation")

// revokedAt asks a gate's forward-auth endpoint about token: false for 200,
// true for a 401 whose challenge says "token revoked", and an error wrapping
// errRejected for anything else (a stale gate, a bad token).
func revokedAt(ctx context.Context, hc *http.Client, gate, token string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", gate+"/auth", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return false, nil
	case resp.StatusCode == http.StatusUnauthorized && strings.Contains(resp.Header.Get("WWW-Authenticate"), "token revoked"):
		return true, nil
	}
	return false, fmt.Errorf("%w: %s %s", errRejected, resp.Status, resp.Header.Get("WWW-Authenticate"))
}

// gatePosition returns the feed position a gate reports at /readyz
// (answered 200 or 503 with the same body).
func gatePosition(ctx context.Context, hc *http.Client, gate string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", gate+"/readyz", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Position *int64 `json:"position"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.Position == nil {
		return 0, fmt.Errorf("bench: %s/readyz (%s) has no position: %v", gate, resp.Status, err)
	}
	return *st.Position, nil
}

// createSessions signs in n subjects named prefix-0 ... over the clients in
// turn, with workers concurrent requests.
func createSessions(ctx context.Context, clients []*client.Client, prefix string, n, workers int) ([]client.Tokens, error) {
	out := make([]client.Tokens, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t, err := clients[i%len(clients)].CreateSession(ctx, client.SessionRequest{Subject: fmt.Sprintf("%s-%d", prefix, i), Device: "bench"})
				if err != nil {
					errs <- fmt.Errorf("bench: create session %d: %w", i, err)
					return
				}
				out[i] = t
			}
		}()
	}
	wg.Wait()
	close(errs)
	return out, <-errs
}

// checkAccepted makes sure every gate accepts every token, so that a later
// 401 can only come from a revocation.
func checkAccepted(ctx context.Context, hc *http.Client, gates []string, toks []client.Tokens, workers int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(toks)*len(gates) || ctx.Err() != nil {
					return
				}
				g := gates[i%len(gates)]
				revoked, err := revokedAt(ctx, hc, g, toks[i/len(gates)].AccessToken)
				if err == nil && revoked {
					err = fmt.Errorf("revoked already")
				}
				if err != nil {
					errs <- fmt.Errorf("bench: gate %s refused a fresh token: %w", g, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
