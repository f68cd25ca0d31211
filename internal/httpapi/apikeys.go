package httpapi

import (
	"net/http"

	"github.com/tegata-dev/tegata/internal/authority"
)

// createdAPIKey is the answer to POST /v1/apikeys: the only answer that
// ever carries a key's secret.
type createdAPIKey struct {
	authority.APIKeyInfo
	Key string `json:"key"`
}

func (s *server) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name   string `json:"name"`
		Role   string `json:"role"`
		Reason string `json:"reason"`
	}
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	by := actor(r, req.Reason)
	k, secret, err := s.a.CreateAPIKey(r.Context(), req.Name, req.Role, by)
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "API key created", "id", k.ID, "name", k.Name, "role", k.Role, "by", by.By)
	writeJSON(w, http.StatusCreated, createdAPIKey{APIKeyInfo: k, Key: secret})
	return nil
}

func (s *server) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.a.APIKeys(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
	return nil
}

func (s *server) revokeAPIKey(w http.ResponseWriter, r *http.Request) error {
	var req reasonBody
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	by := actor(r, req.Reason)
	if err := s.a.RevokeAPIKey(r.Context(), r.PathValue("id"), by); err != nil {
		return err
	}
	s.streams.closeKey(r.PathValue("id")) // other nodes: within their next check of the key
	s.log.InfoContext(r.Context(), "API key revoked", "id", r.PathValue("id"), "by", by.By)
	writeJSON(w, http.StatusOK, map[string]bool{"revoked": true})
	return nil
}
