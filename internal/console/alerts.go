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
	ids := make([]string, len(recs))
	for i, rec := range recs {
		ids[i] = rec.Target
	}
	subjects, err := c.st.SessionSubjects(r.Context(), ids)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		d.Alerts = append(d.Alerts, alert{AuditRecord: rec, Subject: subjects[rec.Target]})
	}
	return c.render(w, op, "alerts", "Alerts", d)
}
