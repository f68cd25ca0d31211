package authority

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// SharedSettings returns the settings every node of a cluster must share,
// with the defaults filled in, named as `tegata serve` flags name them. A
// node compares them at start with the cluster's record and refuses to
// start on a difference: tokens minted by one node must be accepted by
// every verifier and every other node, and a session must not live
// longer or shorter depending on which node the balancer picked. The
// access token lifetime is not among them: nodes may differ in it while
// it changes, and the store's lifetime leases keep that safe.
func (c Config) SharedSettings() map[string]string {
	c.setDefaults()
	sl := c.StatusLists
	m := map[string]string{
		"audience":          c.Audience,
		"alg":               c.Algorithm,
		"refresh-ttl":       c.RefreshTTL.String(),
		"session-ttl":       c.SessionTTL.String(),
		"refresh-grace":     offOr(c.RefreshGrace),
		"key-publish-delay": c.KeyPublishDelay.String(),
		"leeway":            c.Leeway.String(),
		"event-retention":   c.EventRetention.String(),
		"status-list":       strconv.FormatBool(!sl.Off()),
	}
	if !sl.Off() {
		m["status-list-size"] = strconv.Itoa(sl.Size)
		m["status-list-ttl"] = sl.TTL.String()
	}
	return m
}

// MasterKeyFingerprint identifies a master key without revealing it: 64
// bits of an HMAC under a key derived from it for this purpose alone, so
// that nodes can tell at start that they were given the same one.
func MasterKeyFingerprint(master []byte) (string, error) {
	if len(master) != MasterKeySize {
		return "", fmt.Errorf("authority: master key must be %d bytes, got %d", MasterKeySize, len(master))
	}
	key, err := hkdf.Key(sha256.New, master, nil, "tegata master key fingerprint", 32)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("tegata"))
	return hex.EncodeToString(mac.Sum(nil)[:8]), nil
}

// offOr is a duration setting as the cluster record keeps it: "off" for a
// negative one, whatever its value.
func offOr(d time.Duration) string {
	if d < 0 {
		return "off"
	}
	return d.String()
}
