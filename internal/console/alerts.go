package console

import (
	"net/http"
	"strconv"

	"github.com/tegata-dev/tegata/internal/store"
)

type alert struct {
	store.AuditRecord
	// Subject is the user of the session the alert is about, when the
	// session is still stored.
	Subject string
}

type alertsData struct {
	Alerts []alert
	Next   string
}

// alerts is GET /console/alerts: refresh token reuse (theft) and failed
// device-binding proofs, newest first, each linked to its user.
func (c *Console) alerts(w http.ResponseWriter, r *http.Request, op *operator) error {
	q := store.AuditQuery{Actions: []string{actionReuse, actionBindingFailed}, Limit: pageSize + 1}
	if b := r.FormValue("before"); b != "" {
		var err error
		if q.Before, err = strconv.ParseInt(b, 10, 64); err != nil || q.Before < 1 {
			return &pageError{status: http.StatusBadRequest, msg: "before must be a record id."}
		}
	}
	recs, err := c.st.SearchAudit(r.Context(), q)
	if err != nil {
		return err
	}
	var d alertsData
	if len(recs) > pageSize {
		recs = recs[:pageSize]
		d.Next = Prefix + "alerts?before=" + strconv.FormatInt(recs[pageSize-1].ID, 10)
	}
	for _, rec := range recs {
		a := alert{AuditRecord: rec}
		if s, _, err := c.st.Session(r.Context(), rec.Target); err == nil {
			a.Subject = s.Subject
		}
		d.Alerts = append(d.Alerts, a)
	}
	return c.render(w, op, "alerts", "Alerts", d)
}
