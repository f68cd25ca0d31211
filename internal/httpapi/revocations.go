package httpapi

import (
	"net/http"

	"github.com/tegata-dev/tegata/internal/authority"
)

const bulkRevocationRoute = "POST /v1/revocations"

// maxBulkBody caps the body of POST /v1/revocations: 10,000 items of a
// subject and a few claims each, with room to spare.
const maxBulkBody = 8 << 20

type bulkItemJSON struct {
	SessionID string      `json:"session_id"`
	Subject   string      `json:"subject"`
	Scope     string      `json:"scope"`
	Claims    claimsField `json:"claims"`
}

type bulkOutcomeJSON struct {
	Revoked  bool  `json:"revoked"`
	Seq      int64 `json:"seq,omitempty"`
	Sessions int   `json:"sessions"` // live sessions the item found (store.Revoked)
}

// revokeMany is POST /v1/revocations: many sessions and subjects revoked
// in one transaction, all or nothing.
func (s *server) revokeMany(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Items  []bulkItemJSON `json:"items"`
		Reason string         `json:"reason"`
	}
	if err := decodeJSONLimit(w, r, &req, true, maxBulkBody); err != nil {
		return err
	}
	wait, confirm, err := s.confirmWait(r)
	if err != nil {
		return err
	}
	items := make([]authority.RevokeItem, len(req.Items))
	for i, it := range req.Items {
		items[i] = authority.RevokeItem{SessionID: it.SessionID, Subject: it.Subject, Scope: it.Scope, Claims: it.Claims}
	}
	a := actor(r, req.Reason)
	es, err := s.a.Revoke(appendCtx(r, confirm), items, a)
	if err != nil {
		return err
	}
	out := make([]bulkOutcomeJSON, len(es))
	var revoked int
	var last int64
	for i, e := range es {
		out[i].Sessions = e.Sessions
		if e.Seq != 0 {
			out[i].Revoked, out[i].Seq, revoked = true, e.Seq, revoked+1
			last = max(last, e.Seq)
		}
	}
	s.log.InfoContext(r.Context(), "bulk revocation", "items", len(es), "revoked", revoked, "by", a.By)
	s.confirmed(w, r, map[string]any{"items": out}, last, wait, confirm)
	return nil
}
