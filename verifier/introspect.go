package verifier

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tegata-dev/tegata/internal/requestid"
)

const introspectPath = "/v1/introspect"

// introspect asks the authorities whether raw is active (RFC 7662). It is the
// fallback when the local revocation state cannot be trusted, so it runs only
// after the token passed every local check. It returns nil when the authority
// says active, ErrInactive when it says not, and ErrUnavailable (wrapping the
// causes) when no authority gave an answer.
func (a *authorities) introspect(ctx context.Context, apiKey, raw string) error {
	form := url.Values{"token": {raw}}.Encode()
	var active bool
	err := a.each(ctx, func(ctx context.Context, base string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+introspectPath, strings.NewReader(form))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+apiKey)
		if id := requestid.From(ctx); id != "" {
			req.Header.Set(requestid.Header, id) // the authority logs it with its answer
		}
		// Introspection only reads, so it is safe to replay; saying so lets
		// the transport retry a POST that hit a pooled connection the server
		// had just closed. An empty value is not sent on the wire.
		req.Header["Idempotency-Key"] = []string{}
		body, err := a.do(req)
		if err != nil {
			return err
		}
		var ans struct {
			Active *bool `json:"active"`
		}
		if err := json.Unmarshal(body, &ans); err != nil {
			return fmt.Errorf("decoding introspection answer: %w", err)
		}
		if ans.Active == nil {
			return fmt.Errorf("introspection answer without \"active\"")
		}
		active = *ans.Active
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("%w: introspection: %w", ErrUnavailable, err)
	case !active:
		return ErrInactive
	}
	return nil
}
