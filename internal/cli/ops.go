package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/server"
)

// opFlags are the flags every operator command shares, and what the
// command used, for messages.
type opFlags struct {
	authority string
	keyFile   string
	jsonOut   bool
	caFile    string

	base      string // the authority called, once chosen
	keySource string // where the API key came from: TEGATA_API_KEY or a file
}

// newOpFlags returns the flag set of an operator command with the shared
// flags registered; the command adds its own before parsing.
func newOpFlags(env Env, name string) (*flagSet, *opFlags) {
	fs := newFlags(env, name)
	o := &opFlags{}
	fs.StringVar(&o.authority, "authority", envOr(env, "TEGATA_AUTHORITY", "http://"+server.DefaultAddr),
		"authority URL, or several comma-separated: the first that answers is used (env TEGATA_AUTHORITY)")
	fs.StringVar(&o.keyFile, "key-file", filepath.Join(envOr(env, "TEGATA_DATA", server.DefaultDataDir), "api-key"), "file holding the admin API key, read when TEGATA_API_KEY is unset")
	fs.BoolVar(&o.jsonOut, "json", false, "print JSON (always one object)")
	fs.StringVar(&o.caFile, "ca-file", env.Getenv("TEGATA_CA_FILE"), "PEM file of CA certificates trusted, besides the system's, for an https:// authority (env TEGATA_CA_FILE)")
	return fs, o
}

// client returns the operator's client, on the first authority that
// answers.
func (o *opFlags) client(env Env) (*client.Client, error) {
	key, err := apiKeyFrom(env, o.keyFile)
	if err != nil {
		return nil, err
	}
	if _, err := trustCA(o.caFile); err != nil {
		return nil, err
	}
	ctx, cancel := opContext(0)
	defer cancel()
	if o.base, err = o.pick(ctx); err != nil {
		return nil, err
	}
	o.keySource = key.source
	return &client.Client{BaseURL: o.base, APIKey: key.value}, nil
}

// call makes one API call: f gets the client and a context bounding the
// call (by opTimeout, plus wait for a call that waits on purpose), and its
// error is explained (see explain).
func (o *opFlags) call(env Env, wait time.Duration, f func(context.Context, *client.Client) error) error {
	c, err := o.client(env)
	if err != nil {
		return err
	}
	ctx, cancel := opContext(wait)
	defer cancel()
	return o.explain(f(ctx, c))
}

// explain adds to an authority's refusal of the API key which key it was
// and which authority refused it: a key from the wrong data directory, or
// another cluster's, is the usual cause.
func (o *opFlags) explain(err error) error {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Status {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w; the authority at %s refused the API key from %s: give this authority's admin key "+
			"(TEGATA_API_KEY, or --key-file; TEGATA_DATA points --key-file at a data directory's api-key)", err, o.base, o.keySource)
	case http.StatusForbidden:
		return fmt.Errorf("%w; the API key from %s may not do this at %s: operator commands need a key with the admin role",
			err, o.keySource, o.base)
	}
	return err
}

// pick chooses the authority to call among --authority's: the only one,
// or the first of several whose /healthz answers within a second, else the
// first (whose error the call then reports).
func (o *opFlags) pick(ctx context.Context) (string, error) {
	urls, err := authorityList(o.authority)
	if err != nil || len(urls) == 1 {
		return firstOf(urls), err
	}
	for _, u := range urls {
		if healthy(ctx, u) {
			return u, nil
		}
	}
	return urls[0], nil
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// authorityList parses --authority for the gate and the operator commands
// alike: one URL, or several comma-separated.
func authorityList(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usageErr("--authority: %q is not an http(s) URL", a)
		}
		out = append(out, strings.TrimRight(a, "/"))
	}
	if len(out) == 0 {
		return nil, usageErr("--authority (or TEGATA_AUTHORITY) is required")
	}
	return out, nil
}

// healthy reports whether base answers GET /healthz with 200 within a
// second.
func healthy(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return (&client.Client{BaseURL: base}).Healthy(ctx) == nil
}

// opTimeout bounds an operator command's call to the authority.
const opTimeout = 30 * time.Second

// opContext bounds a call by opTimeout plus wait, the time the call is
// asked to wait on purpose (--confirm).
func opContext(wait time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout+wait)
}

// printJSON prints v as indented JSON. encoding/json escapes C0 control
// characters but leaves DEL, C1 and bidirectional controls raw; printable
// escapes those too, which keeps the JSON valid and equal in value. It is
// applied line by line: the line breaks of the indentation are JSON's own
// (inside strings, encoding/json has escaped every one).
func printJSON(env Env, v any) error {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for i, l := range lines {
		lines[i] = printable(l)
	}
	_, err := io.WriteString(env.Stdout, strings.Join(lines, "\n")+"\n")
	return err
}

// table prints rows under header, every cell escaped by printable: cells
// hold text API callers chose (devices, reasons, subjects).
func table(env Env, header string, rows [][]string) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = printable(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func keys(env Env, args []string) error {
	return subcommand(env, "keys", args, map[string]func(Env, []string) error{
		"list": keysList, "rotate": keysRotate,
	})
}

func keysRotate(env Env, args []string) error {
	fs, o := newOpFlags(env, "keys rotate")
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	use := fs.String("use", "access", "which key: access (access tokens, status lists) or events (Shared Signals SETs)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *use != "access" && *use != "events" {
		return usageErr("--use must be access or events")
	}
	var k client.SigningKey
	err := o.call(env, 0, func(ctx context.Context, c *client.Client) (err error) {
		rotate := c.RotateKey
		if *use == "events" {
			rotate = c.RotateEventKey
		}
		k, err = rotate(ctx, *reason)
		return err
	})
	if err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(env, struct {
			KID      string    `json:"kid"`
			SignFrom time.Time `json:"sign_from"`
		}{k.ID, k.SignFrom})
	}
	fmt.Fprintf(env.Stdout, "new key %s published now; it signs from %s. The previous key stays in JWKS until its tokens expire.\n", k.ID, ts(k.SignFrom))
	return nil
}

func keysList(env Env, args []string) error {
	fs, o := newOpFlags(env, "keys list")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	var list []client.SigningKey
	err := o.call(env, 0, func(ctx context.Context, c *client.Client) (err error) {
		list, err = c.Keys(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(env, struct {
			Keys []client.SigningKey `json:"keys"`
		}{list})
	}
	var rows [][]string
	for _, k := range list {
		rows = append(rows, []string{k.ID, k.Algorithm, k.Use, k.State, ts(k.CreatedAt), ts(k.SignFrom), ts(k.RetiredAt)})
	}
	table(env, "KID\tALG\tUSE\tSTATE\tCREATED\tSIGNS FROM\tRETIRED", rows)
	return nil
}

func sessions(env Env, args []string) error {
	return subcommand(env, "sessions", args, map[string]func(Env, []string) error{"list": sessionsList})
}

func sessionsList(env Env, args []string) error {
	fs, o := newOpFlags(env, "sessions list")
	subject := fs.String("subject", "", "the subject whose sessions to list (required)")
	limit := fs.Int("limit", 100, "show at most this many sessions, newest first; 0 = all")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *subject == "" {
		return usageErr("--subject is required")
	}
	if *limit < 0 {
		return usageErr("--limit must not be negative")
	}
	var list []client.Session
	err := o.call(env, 0, func(ctx context.Context, c *client.Client) (err error) {
		list, err = c.Sessions(ctx, *subject)
		return err
	})
	if err != nil {
		return err
	}
	more := 0
	if *limit > 0 && len(list) > *limit {
		list, more = list[:*limit], len(list)-*limit
	}
	if o.jsonOut {
		return printJSON(env, struct {
			Subject  string           `json:"subject"`
			Sessions []client.Session `json:"sessions"`
			More     int              `json:"more"` // sessions left out by --limit
		}{*subject, nonNil(list), more})
	}
	if len(list) == 0 {
		fmt.Fprintf(env.Stdout, "%s has no live sessions (none created, or all revoked or expired).\n", printable(strconv.Quote(*subject)))
		return nil
	}
	var rows [][]string
	for _, s := range list {
		rows = append(rows, []string{s.ID, s.Device, ts(s.CreatedAt), ts(s.LastRefreshedAt), ts(s.ExpiresAt)})
	}
	table(env, "SESSION\tDEVICE\tCREATED\tLAST REFRESHED\tEXPIRES", rows)
	if more > 0 {
		fmt.Fprintf(env.Stdout, "%d more, older sessions not shown (--limit %d; --limit 0 shows all).\n", more, *limit)
	}
	return nil
}

// parseClaimsFlag reads revoke's --claims: "" (not given) is nil, which
// keeps the subjects' claims; a JSON object replaces them, and {} or null
// clears them. A session revocation has no claims to change.
func parseClaimsFlag(raw string, session bool) (map[string]any, error) {
	if raw == "" {
		return nil, nil
	}
	if session {
		return nil, usageErr("--claims applies to --subject and --subjects-from, not --session")
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(raw), &claims); err != nil {
		return nil, usageErr(`--claims must be a JSON object, e.g. '{"roles":["viewer"]}' ('{}' clears the claims): %v`, err)
	}
	if claims == nil {
		claims = map[string]any{}
	}
	return claims, nil
}

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func revoke(env Env, args []string) error {
	fs, o := newOpFlags(env, "revoke")
	sid := fs.String("session", "", "revoke one session (sign out one device)")
	subject := fs.String("subject", "", "revoke a subject's tokens issued before now")
	from := fs.String("subjects-from", "", "revoke every subject listed in this file (- for standard input): one per line, trimmed; blank lines and # comments skipped; 10,000 per call")
	scope := fs.String("scope", "sessions", "with --subject or --subjects-from: sessions (sign out everywhere) or access (cut off access tokens only)")
	claimsJSON := fs.String("claims", "", `with --subject or --subjects-from: a JSON object that replaces the claims of the subjects' sessions for the tokens they mint from now on, e.g. '{"roles":["viewer"]}'; '{}' clears them (use with --scope access for a role change)`)
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	confirm := fs.Duration("confirm", 0, "wait up to this long (capped by the authority) until the revocation is in force on every verifier; exit 3 if it was not by then")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *confirm < 0 {
		return usageErr("--confirm must not be negative")
	}
	claims, err := parseClaimsFlag(*claimsJSON, *sid != "")
	if err != nil {
		return err
	}
	given := 0
	for _, v := range []string{*sid, *subject, *from} {
		if v != "" {
			given++
		}
	}
	if given != 1 {
		return usageErr("give exactly one of --session, --subject or --subjects-from")
	}
	if *from != "" {
		return revokeSubjectsFrom(env, o, *from, client.RevokeItem{Scope: *scope, Claims: claims}, *reason, *confirm)
	}
	var r client.Revocation
	err = o.call(env, *confirm, func(ctx context.Context, c *client.Client) (err error) {
		if *sid != "" {
			r, err = c.RevokeSession(ctx, client.SessionRevocation{SessionID: *sid, Reason: *reason, Confirm: *confirm})
		} else {
			r, err = c.RevokeSubject(ctx, client.SubjectRevocation{Subject: *subject, Scope: *scope, Claims: claims, Reason: *reason, Confirm: *confirm})
		}
		return err
	})
	if err != nil {
		return err
	}
	if o.jsonOut {
		if err := printJSON(env, r); err != nil || r.Confirmation == nil || r.Confirmation.InForce {
			return err
		}
		return errNotConfirmed
	}
	if !r.Revoked {
		fmt.Fprintln(env.Stdout, "already revoked; nothing changed")
	} else {
		fmt.Fprintf(env.Stdout, "revoked (revocation log seq %d)\n", r.Entry.Seq)
	}
	return printConfirmation(env, r.Confirmation)
}

func audit(env Env, args []string) error {
	fs, o := newOpFlags(env, "audit")
	after := fs.Int64("after", 0, "only records with an id greater than this (the next page: the id the last page ended at)")
	limit := fs.Int("limit", 100, "at most this many records (up to 1000)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *limit < 1 || *limit > authority.MaxAuditPage {
		return usageErr("--limit must be from 1 to %d", authority.MaxAuditPage)
	}
	var page client.AuditPage
	err := o.call(env, 0, func(ctx context.Context, c *client.Client) (err error) {
		page, err = c.Audit(ctx, client.AuditQuery{After: *after, Limit: *limit})
		return err
	})
	if err != nil {
		return err
	}
	if o.jsonOut {
		page.Records = nonNil(page.Records)
		return printJSON(env, page)
	}
	if len(page.Records) == 0 {
		fmt.Fprintf(env.Stdout, "no audit records after id %d.\n", *after)
		return nil
	}
	var rows [][]string
	for _, r := range page.Records {
		rows = append(rows, []string{fmt.Sprint(r.ID), ts(r.At), r.Action, r.Target, r.By, r.Reason})
	}
	table(env, "ID\tAT\tACTION\tTARGET\tBY\tREASON", rows)
	if page.NextAfter != 0 {
		fmt.Fprintf(env.Stdout, "more records follow: tegata audit --after %d --limit %d\n", page.NextAfter, *limit)
	}
	return nil
}
