package console

import (
	"net/http"

	"github.com/tegata-dev/tegata/internal/inforce"
)

// verifiers is GET /console/verifiers: every verifier as last heard; the
// page's script then polls verifiersJSON and redraws the table.
func (c *Console) verifiers(w http.ResponseWriter, r *http.Request, op *operator) error {
	l, err := c.cfg.InForce.Current(r.Context())
	if err != nil {
		return err
	}
	return c.render(w, op, "verifiers", "Verifiers", l)
}

// verifiersJSON is GET /console/api/verifiers: GET /v1/verifiers's answer
// (the verifiers are asked for their positions first).
func (c *Console) verifiersJSON(w http.ResponseWriter, r *http.Request, _ *operator) error {
	l, err := c.cfg.InForce.List(r.Context())
	if err != nil {
		return err
	}
	if l.Verifiers == nil {
		l.Verifiers = []inforce.VerifierView{}
	}
	return writeJSON(w, l)
}
