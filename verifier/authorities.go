package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// requestTimeout bounds each request to one authority other than the feed,
// so that a hung node costs a failover, not a hung verifier.
const requestTimeout = 10 * time.Second

// maxBody caps what is read from an authority's answer: discovery, JWKS and
// introspection documents are a few KiB.
const maxBody = 1 << 20

// authorities sends requests to the authority nodes with failover: each
// request goes first to the node that answered last, then to the others in
// order: the configured ones, then those the cluster advertises on the
// feed (set). Safe for concurrent use.
type authorities struct {
	urls      atomic.Pointer[[]string]
	client    *http.Client
	preferred atomic.Int32
}

func newAuthorities(urls []string, client *http.Client) *authorities {
	if client == nil {
		client = http.DefaultClient
	}
	a := &authorities{client: client}
	a.set(urls)
	return a
}

// set replaces the nodes requests go to.
func (a *authorities) set(urls []string) { a.urls.Store(&urls) }

// each calls try with each base URL in failover order until one returns nil.
// It returns the joined errors of every attempt if none did.
func (a *authorities) each(ctx context.Context, try func(ctx context.Context, base string) error) error {
	urls := *a.urls.Load()
	start := int(a.preferred.Load())
	var errs []error
	for i := range urls {
		j := (start + i) % len(urls)
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := try(rctx, urls[j])
		cancel()
		if err == nil {
			a.preferred.Store(int32(j))
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", urls[j], err))
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// do sends req and returns the body of a 200 answer, read up to maxBody.
func (a *authorities) do(req *http.Request) ([]byte, error) {
	body, _, err := a.doHeader(req)
	return body, err
}

// doHeader is do that also returns the answer's header.
func (a *authorities) doHeader(req *http.Request) ([]byte, http.Header, error) {
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s %s: status %d", req.Method, req.URL.Path, resp.StatusCode)
	}
	if len(body) > maxBody {
		return nil, nil, fmt.Errorf("%s %s: answer larger than %d bytes", req.Method, req.URL.Path, maxBody)
	}
	return body, resp.Header, nil
}

// get fetches base+path with failover and returns the body of the first 200
// answer.
func (a *authorities) get(ctx context.Context, path string) ([]byte, error) {
	body, _, err := a.getHeader(ctx, path)
	return body, err
}

// getHeader is get that also returns the answer's header.
func (a *authorities) getHeader(ctx context.Context, path string) ([]byte, http.Header, error) {
	var (
		body []byte
		hdr  http.Header
	)
	err := a.each(ctx, func(ctx context.Context, base string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		body, hdr, err = a.doHeader(req)
		return err
	})
	return body, hdr, err
}

// discovery is the authority's openid-configuration, as the client package
// reads it: one description of the document for every Go reader.
type discovery = client.Discovery

// discover fetches the openid-configuration.
func (a *authorities) discover(ctx context.Context) (discovery, error) {
	var d discovery
	body, err := a.get(ctx, "/.well-known/openid-configuration")
	if err != nil {
		return d, fmt.Errorf("verifier: fetching openid-configuration: %w", err)
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return d, fmt.Errorf("verifier: decoding openid-configuration: %w", err)
	}
	return d, nil
}
