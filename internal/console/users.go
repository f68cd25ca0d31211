package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/store"
)

// pageSize is how many rows a search or audit page shows.
const pageSize = 50

type usersData struct {
	Query   string
	Results []store.SubjectSummary
	// Session is the session whose id the query is, if any.
	Session *store.Session
	Next    string // the query string of the next page; empty on the last
}

// users is GET /console/users?q=: subjects beginning with q (by index, in
// byte order, a page at a time), and the session whose id q is.
func (c *Console) users(w http.ResponseWriter, r *http.Request, op *operator) error {
	q := r.FormValue("q")
	if err := plainText(map[string]string{"The search": q, "after": r.FormValue("after")}); err != nil {
		return err
	}
	if len(q) > authority.MaxSubjectLen {
		return &pageError{status: http.StatusBadRequest, msg: "The search is longer than any subject."}
	}
	d := usersData{Query: q}
	if q != "" {
		s, _, err := c.st.Session(r.Context(), q)
		switch {
		case err == nil:
			d.Session = &s
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	res, err := c.st.Subjects(r.Context(), store.SubjectQuery{Prefix: q, After: r.FormValue("after"), Limit: pageSize + 1, Now: c.now()})
	if err != nil {
		return err
	}
	if len(res) > pageSize {
		res = res[:pageSize]
		d.Next = Prefix + "users?" + url.Values{"q": {q}, "after": {res[pageSize-1].Subject}}.Encode()
	}
	d.Results = res
	return c.render(w, op, "users", "Users", d)
}

type device struct {
	store.Session
	Claims string // the claims as JSON text
}

type userData struct {
	Subject string
	Devices []device
	Claims  string // the newest session's claims, to edit
	Console bool   // the subject is an operator's console sessions
}

// user is GET /console/user?sub=: a subject's live sessions and what can
// be done to them.
func (c *Console) user(w http.ResponseWriter, r *http.Request, op *operator) error {
	sub := r.FormValue("sub")
	ss, err := c.a.Sessions(r.Context(), sub)
	if err != nil {
		return err
	}
	d := userData{Subject: sub, Claims: "{}"}
	for _, s := range ss {
		d.Devices = append(d.Devices, device{Session: s, Claims: claimsText(s.Claims)})
	}
	if len(ss) > 0 {
		d.Claims = claimsText(ss[0].Claims)
	}
	d.Console = len(sub) > len(SubjectPrefix) && sub[:len(SubjectPrefix)] == SubjectPrefix
	return c.render(w, op, "user", sub, d)
}

// claimsText is stored claims as indented JSON, "{}" for none.
func claimsText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "{}"
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	// Not escaped for HTML here: the template escapes, and the operator
	// edits what the user's claims say, not \u003c.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return string(raw)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
