package httpapi

import (
	"net/http"
	"strings"
)

// readiness is the /readyz answer.
type readiness struct {
	Status string `json:"status"` // "ready" or "not_ready"
	Ready  bool   `json:"ready"`
	// Reason says why the node is not ready, naming no host.
	Reason string `json:"reason,omitempty"`
}

// ready answers /readyz: 200 when this node can do its job (its store
// answered within the last seconds and a signing key is active), else 503
// with the reason, so a load balancer takes a node cut off from its store
// out of rotation while /healthz stays 200. A node whose feed has not
// started yet is not ready either.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	err := s.a.Ready()
	if err == nil && s.feedReady != nil {
		err = s.feedReady()
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "not_ready",
			Reason: strings.TrimPrefix(err.Error(), "authority: ")})
		return
	}
	writeJSON(w, http.StatusOK, readiness{Status: "ready", Ready: true})
}
