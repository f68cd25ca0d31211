package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tegata-dev/tegata/internal/authority"
)

// pages are the parsed templates, by page name: each is the layout with
// the page's "content".
type pages map[string]*template.Template

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"age": func(now, t time.Time) string { return age(now.Sub(t)) },
}

// parsedPages parses the embedded templates once per process: they are
// the same for every Console, and a parsed template is safe for
// concurrent use, so the consoles share them.
var parsedPages = sync.OnceValues(parsePages)

func parsePages() (pages, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := pages{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		p[base] = t
	}
	return p, nil
}

// view is what every page's template gets.
type view struct {
	Title string
	Nav   string // the navigation entry to highlight
	Op    *operator
	Now   time.Time
	Data  any
}

// CSRF is the token every form carries.
func (v view) CSRF() string {
	if v.Op == nil {
		return ""
	}
	return v.Op.csrf
}

// Operator is the signed-in key's name.
func (v view) Operator() string {
	if v.Op == nil {
		return ""
	}
	return v.Op.keyName
}

// render writes page with status 200.
func (c *Console) render(w http.ResponseWriter, op *operator, page, title string, data any) error {
	return c.renderStatus(w, http.StatusOK, op, page, title, data)
}

func (c *Console) renderStatus(w http.ResponseWriter, status int, op *operator, page, title string, data any) error {
	t := c.pages[page]
	if t == nil {
		return fmt.Errorf("console: no page %q", page)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, view{Title: title, Nav: page, Op: op, Now: c.now(), Data: data}); err != nil {
		return fmt.Errorf("console: render %s: %w", page, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// pageError is an answer for the operator: a status and a message shown
// as is; any other error is logged and shown as a generic failure.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

// fail answers err: a page for a browser, JSON for the console's scripts.
// Errors of the authority a client caused (invalid input, not found) are
// shown with their description; any other is logged, never shown.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, op *operator, err error) {
	pe := c.describe(r, err)
	if strings.HasPrefix(r.URL.Path, Prefix+"api/") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(pe.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": http.StatusText(pe.status), "error_description": pe.msg})
		return
	}
	if rerr := c.renderStatus(w, pe.status, op, "error", http.StatusText(pe.status), pe.msg); rerr != nil {
		c.log.Error("console: rendering an error page failed", "err", rerr)
		http.Error(w, pe.msg, pe.status)
	}
}

func (c *Console) describe(r *http.Request, err error) *pageError {
	var pe *pageError
	if errors.As(err, &pe) {
		return pe
	}
	var ae *authority.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case authority.CodeInvalidRequest:
			return &pageError{status: http.StatusBadRequest, msg: ae.Description}
		case authority.CodeNotFound:
			return &pageError{status: http.StatusNotFound, msg: ae.Description}
		case authority.CodeConflict:
			return &pageError{status: http.StatusConflict, msg: ae.Description}
		}
	}
	c.log.Error("console: request failed", "path", r.URL.Path, "err", err)
	return &pageError{status: http.StatusInternalServerError, msg: "Something went wrong on the server; the log says what."}
}

// plainText refuses values no store can hold as text (invalid UTF-8,
// NUL): a 400 naming the field, never the database's 500.
func plainText(fields map[string]string) error {
	for name, v := range fields {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return &pageError{status: http.StatusBadRequest, msg: name + " must be valid UTF-8 without NUL."}
		}
	}
	return nil
}

// writeJSON answers the console's scripts.
func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// age says how long d is, roughly: "3 min", "2 h", "5 d".
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "in " + age(-d)
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d d", int(d.Hours()/24))
}
