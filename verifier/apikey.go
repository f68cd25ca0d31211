package verifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tegata-dev/tegata/internal/secret"
)

// SetAPIKey replaces the API key the verifier authenticates with: a feed
// key being rotated, or read again from the file it is kept in. It first
// asks an authority whether it accepts the key; once one has, the feed
// stream is opened again with it, and position reports and introspection
// use it from then on. Meanwhile the verifier goes on verifying as before.
//
// A key every authority refuses is not taken: SetAPIKey returns an error
// wrapping ErrKeyRefused and the verifier keeps its key, so a mistyped or
// revoked key never stops it. So does a malformed key, and any other
// failure (no authority answered). Safe for concurrent use; a local
// verifier has no key and returns an error.
func (v *Verifier) SetAPIKey(ctx context.Context, key string) error {
	if v.feed == nil {
		return errors.New("verifier: SetAPIKey on a verifier that follows no authority")
	}
	key, err := secret.Clean(key)
	if err == nil && key == "" {
		err = errors.New("the key is empty")
	}
	if err != nil {
		return fmt.Errorf("verifier: SetAPIKey: %w", err)
	}
	if err := v.auth.checkKey(ctx, key); err != nil {
		return err
	}
	v.key.Store(&key)
	v.feed.SetAPIKey(key)
	return nil
}

// apiKey is the key the verifier authenticates with now.
func (v *Verifier) apiKey() string { return *v.key.Load() }

// keyCheckToken is what checkKey asks about: no token, so the answer is
// "inactive" from any authority that accepts the key.
const keyCheckToken = "tegata-api-key-check"

// checkKey asks the authorities, with failover, whether they accept key: an
// introspection request, which every role may make, answered 401 or 403
// for a key refused. It returns nil once one accepts it, an error wrapping
// ErrKeyRefused when every one refused it, else the errors met.
func (a *authorities) checkKey(ctx context.Context, key string) error {
	form := url.Values{"token": {keyCheckToken}}.Encode()
	refused := 0
	err := a.each(ctx, func(ctx context.Context, base string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+introspectPath, strings.NewReader(form))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := a.client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return nil
		case http.StatusUnauthorized, http.StatusForbidden:
			refused++
		}
		return fmt.Errorf("status %d", resp.StatusCode)
	})
	switch {
	case err == nil:
		return nil
	case refused > 0 && refused == len(*a.urls.Load()):
		return fmt.Errorf("%w: the new key was refused by every authority; keeping the current one: %w", ErrKeyRefused, err)
	}
	return fmt.Errorf("verifier: checking the new API key: no authority accepted it; keeping the current one: %w", err)
}
