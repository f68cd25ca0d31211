package feed

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
)

// This file is the cluster's membership on the feed: the `nodes` event,
// which tells followers the URLs the cluster's nodes advertise (tegata
// serve --advertise-url), so that a verifier given one or a few seed URLs
// follows nodes started after it and survives its seeds going away.
//
// A follower trusts the list as far as the stream it came on: the event is
// taken only when it names the epoch of the log the follower follows and,
// when the follower knows it, the issuer it expects; and a node reached
// through the list that serves another epoch, or refuses the key, is
// dropped rather than followed (see Client). Seeds are never dropped.

// Nodes is the data of a `nodes` event.
type Nodes struct {
	Issuer string   `json:"issuer"`
	Epoch  string   `json:"epoch"`
	URLs   []string `json:"urls"`
}

// MaxNodes caps the URLs a `nodes` event carries, and a follower takes.
const MaxNodes = 64

func appendNodes(dst []byte, n Nodes) []byte {
	b, _ := json.Marshal(n) // strings and a slice of strings always encode
	dst = append(dst, "event: nodes\ndata: "...)
	dst = append(dst, b...)
	return append(dst, "\n\n"...)
}

// CleanNodeURL checks that s is an http(s) base URL with a host and no
// query, fragment or credentials, and returns it without a trailing slash.
func CleanNodeURL(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", err
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q is not an http or https URL", s)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q must be a base URL: scheme, host and an optional path, no credentials, query or fragment", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// SetNodes publishes the URLs the cluster's nodes advertise: every stream
// gets a `nodes` event once it has caught up, and again whenever the list
// changes. Nothing is sent until the list has once been non-empty.
func (h *Hub) SetNodes(urls []string) {
	urls = slices.Clone(urls)
	slices.Sort(urls)
	urls = slices.Compact(urls)
	if len(urls) > MaxNodes {
		urls = urls[:MaxNodes]
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if slices.Equal(urls, h.nodes) && (h.nodesFrame != nil || len(urls) == 0) {
		return
	}
	h.nodes = urls
	h.nodesFrame = appendNodes(nil, Nodes{Issuer: h.cfg.Issuer, Epoch: h.epoch, URLs: append([]string{}, urls...)})
	h.nodesGen++
	h.wakeLocked()
}

// errForeignNode ends a stream to an advertised node that serves another
// log than the one the client follows.
var errForeignNode = errors.New("feed: an advertised node serves another log than the one followed")

// urls returns the URLs to follow: the configured ones, then the
// advertised ones.
func (c *Client) urls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.nodes) == 0 {
		return c.URLs
	}
	return append(slices.Clip(c.URLs), c.nodes...)
}

// vetNode refuses a stream to an advertised node that names another epoch
// than the client's: only a configured URL may move the client to another
// log (a restored database, another cluster).
func (c *Client) vetNode(base, epoch string) error {
	if slices.Contains(c.URLs, base) {
		return nil
	}
	if followed := c.State().Epoch; followed != "" && epoch != followed {
		return fmt.Errorf("%w: it names epoch %q, the client follows %q", errForeignNode, epoch, followed)
	}
	return nil
}

// dropNode forgets base if it is an advertised node, and reports whether
// it was one; a configured URL is never dropped.
func (c *Client) dropNode(base string, why error, log *slog.Logger) bool {
	c.mu.Lock()
	i := slices.Index(c.nodes, base)
	c.mu.Unlock()
	if i < 0 || slices.Contains(c.URLs, base) {
		return false
	}
	log.Warn("feed: no longer following an advertised node", "url", base, "err", why)
	c.mu.Lock()
	next := slices.Delete(slices.Clone(c.nodes), i, i+1)
	c.mu.Unlock()
	c.setNodes(next, log)
	return true
}

// nodes takes the URLs a `nodes` event advertises, if it names the log
// the client follows and the issuer it expects.
func (s *follower) nodes(data []byte, now time.Time) error {
	var n Nodes
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("feed: malformed nodes event: %w", err)
	}
	s.c.update(func(st *State) { st.LastHeard = now })
	if epoch := s.c.State().Epoch; n.Epoch != epoch {
		s.log.Warn("feed: ignoring the advertised nodes of another log", "epoch", n.Epoch, "followed", epoch)
		return nil
	}
	if s.c.Issuer != "" && n.Issuer != s.c.Issuer {
		s.log.Warn("feed: ignoring the advertised nodes of another issuer", "issuer", n.Issuer, "expected", s.c.Issuer)
		return nil
	}
	var urls []string
	for _, u := range n.URLs {
		clean, err := CleanNodeURL(u)
		switch {
		case err != nil:
			s.log.Warn("feed: ignoring an advertised node", "url", u, "err", err)
		case !slices.Contains(s.c.URLs, clean) && !slices.Contains(urls, clean) && len(urls) < MaxNodes:
			urls = append(urls, clean)
		}
	}
	s.c.setNodes(urls, s.log)
	return nil
}

// setNodes replaces the advertised URLs followed, logs what changed and
// tells OnNodes.
func (c *Client) setNodes(urls []string, log *slog.Logger) {
	c.mu.Lock()
	old := c.nodes
	if slices.Equal(old, urls) {
		c.mu.Unlock()
		return
	}
	c.nodes = urls
	c.mu.Unlock()
	added, removed := diff(urls, old), diff(old, urls)
	log.Info("feed: following the cluster's advertised nodes", "added", added, "removed", removed, "nodes", urls)
	if c.OnNodes != nil {
		c.OnNodes(c.urls())
	}
}

// diff returns the elements of a not in b.
func diff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}
