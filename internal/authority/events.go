package authority

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/tegata-dev/tegata/internal/store"
)

// Security Event Tokens (Shared Signals) are signed RS256 with a key of
// their own, as the CAEP interoperability profile requires (RSA, at least
// 2048 bits). The key is kept like the access token keys (sealed with the
// master key, published in the JWKS, rotated with `keys rotate --use
// events`) but never signs an access token, and the verifiers of access
// tokens never accept RS256 or read RSA keys from the JWKS.
const (
	eventAlgorithm = "RS256"
	eventKeyBits   = 2048
)

// SignEvent signs a Security Event Token payload (a JSON object):
// header {"alg":"RS256","typ":"secevent+jwt","kid":…}. The first call on a
// store without an event key makes one, signing at once (no receiver can
// know an older one).
func (a *Authority) SignEvent(ctx context.Context, payload []byte) (string, error) {
	key, ok := currentOf(a.ring().events, a.cfg.Clock.Now())
	if !ok {
		if err := a.ensureEventKey(ctx); err != nil {
			return "", err
		}
		if key, ok = currentOf(a.ring().events, a.cfg.Clock.Now()); !ok {
			return "", fmt.Errorf("authority: no event signing key is active")
		}
	}
	kid, err := json.Marshal(key.ID)
	if err != nil {
		return "", err
	}
	header := `{"alg":"` + eventAlgorithm + `","typ":"secevent+jwt","kid":` + string(kid) + `}`
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	sig, err := key.Private.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("authority: sign event: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// EnsureEventKey adds the first event key if there is none yet.
func (a *Authority) EnsureEventKey(ctx context.Context) error { return a.ensureEventKey(ctx) }

// ensureEventKey adds the first event key if none signs now or later.
func (a *Authority) ensureEventKey(ctx context.Context) error {
	if len(a.ring().events) > 0 {
		return nil
	}
	if err := a.reloadKeys(ctx); err != nil {
		return err
	}
	if len(a.ring().events) > 0 {
		return nil
	}
	// Nodes creating their first streams at once each try; one adds.
	k, err := a.newKey(store.PurposeEvents, a.cfg.Clock.Now())
	if err != nil {
		return err
	}
	added, err := a.store.AddFirstKey(ctx, k, store.Actor{By: "system", Reason: "first event stream"})
	if err != nil {
		return fmt.Errorf("authority: store event key: %w", err)
	}
	if added {
		a.log.Info("signing key added", "kid", k.ID, "alg", k.Algorithm, "use", UseEvents)
	}
	return a.reloadKeys(ctx)
}

// SealReceiverSecret encrypts a Shared Signals receiver's credential (the
// Authorization header a push stream sends) for storage, bound to its
// stream.
func (a *Authority) SealReceiverSecret(secret []byte, streamID string) []byte {
	return a.rxSealer.seal(secret, []byte(streamID))
}

// OpenReceiverSecret decrypts what SealReceiverSecret sealed for streamID.
func (a *Authority) OpenReceiverSecret(sealed []byte, streamID string) ([]byte, error) {
	return a.rxSealer.open(sealed, []byte(streamID))
}
