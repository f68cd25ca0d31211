package console

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// exportLimit caps the records one export carries (newest first).
const exportLimit = 10000

type auditData struct {
	Actor, Action, Target, From, To string
	Records                         []store.AuditRecord
	filters                         string
	Next                            string // the query string of the next page
	ExportCSV, ExportJSON           string // the export links, with the filters
}

// auditFilter reads the filters of the audit page and its exports.
func auditFilter(r *http.Request) (store.AuditQuery, auditData, error) {
	d := auditData{Actor: r.FormValue("actor"), Action: r.FormValue("action"), Target: r.FormValue("target"),
		From: r.FormValue("from"), To: r.FormValue("to")}
	if err := plainText(map[string]string{"actor": d.Actor, "action": d.Action, "target": d.Target}); err != nil {
		return store.AuditQuery{}, d, err
	}
	q := store.AuditQuery{Actor: d.Actor, Target: d.Target}
	if d.Action != "" {
		q.Actions = []string{d.Action}
	}
	var err error
	if q.From, err = parseTime(d.From); err != nil {
		return q, d, err
	}
	if q.To, err = parseTime(d.To); err != nil {
		return q, d, err
	}
	if b := r.FormValue("before"); b != "" {
		if q.Before, err = strconv.ParseInt(b, 10, 64); err != nil || q.Before < 1 {
			return q, d, &pageError{status: http.StatusBadRequest, msg: "before must be a record id."}
		}
	}
	f := url.Values{"actor": {d.Actor}, "action": {d.Action}, "target": {d.Target}, "from": {d.From}, "to": {d.To}}
	d.filters = f.Encode()
	d.ExportCSV, d.ExportJSON = Prefix+"audit/export?format=csv&"+d.filters, Prefix+"audit/export?format=json&"+d.filters
	return q, d, nil
}

// parseTime reads a time filter: RFC 3339, or the browser's datetime-local
// (taken as UTC). Empty: no filter.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &pageError{status: http.StatusBadRequest, msg: "Times are like 2026-12-07T03:00 (UTC) or RFC 3339."}
}

// audit is GET /console/audit: the trail, filtered, newest first.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, op *operator) error {
	q, d, err := auditFilter(r)
	if err != nil {
		return err
	}
	q.Limit = pageSize + 1
	if d.Records, err = c.st.SearchAudit(r.Context(), q); err != nil {
		return err
	}
	if len(d.Records) > pageSize {
		d.Records = d.Records[:pageSize]
		d.Next = Prefix + "audit?" + d.filters + "&before=" + strconv.FormatInt(d.Records[pageSize-1].ID, 10)
	}
	return c.render(w, op, "audit", "Audit", d)
}

// auditRecord is a record as exported.
type auditRecord struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	Action string    `json:"action"`
	Target string    `json:"target"`
}

// auditExport is GET /console/audit/export?format=csv|json: the filtered
// records, newest first, up to exportLimit, as a download.
func (c *Console) auditExport(w http.ResponseWriter, r *http.Request, _ *operator) error {
	q, _, err := auditFilter(r)
	if err != nil {
		return err
	}
	format := r.FormValue("format")
	if format != "csv" && format != "json" {
		return &pageError{status: http.StatusBadRequest, msg: "format must be csv or json."}
	}
	q.Limit = exportLimit
	recs, err := c.st.SearchAudit(r.Context(), q)
	if err != nil {
		return err
	}
	out := make([]auditRecord, len(recs))
	for i, a := range recs {
		out[i] = auditRecord{ID: a.ID, At: a.At.UTC(), Actor: a.Actor.By, Reason: a.Actor.Reason, Action: a.Action, Target: a.Target}
	}
	name := "tegata-audit-" + c.now().UTC().Format("20060102T150405Z") + "." + format
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if format == "json" {
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(out)
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "at", "actor", "reason", "action", "target"})
	for _, a := range out {
		_ = cw.Write([]string{strconv.FormatInt(a.ID, 10), a.At.Format(time.RFC3339Nano), cell(a.Actor), cell(a.Reason), cell(a.Action), cell(a.Target)})
	}
	cw.Flush()
	return cw.Error()
}

// cell defuses a value a spreadsheet would take for a formula (subjects
// and reasons are chosen by others): it gets a leading apostrophe.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
