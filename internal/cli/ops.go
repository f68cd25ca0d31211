package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/server"
)

// opFlags are the flags every operator command shares.
type opFlags struct {
	authority string
	keyFile   string
	jsonOut   bool
}

func (o *opFlags) register(env Env, fs *flag.FlagSet) {
	fs.StringVar(&o.authority, "authority", envOr(env, "TEGATA_AUTHORITY", "http://"+server.DefaultAddr), "authority URL (env TEGATA_AUTHORITY)")
	fs.StringVar(&o.keyFile, "key-file", filepath.Join(envOr(env, "TEGATA_DATA", server.DefaultDataDir), "api-key"), "file holding the API key, used when TEGATA_API_KEY is unset")
	fs.BoolVar(&o.jsonOut, "json", false, "print JSON")
}

func (o *opFlags) client(env Env) (*client.Client, error) {
	key, err := apiKeyFrom(env, o.keyFile)
	if err != nil {
		return nil, err
	}
	return &client.Client{BaseURL: o.authority, APIKey: key}, nil
}

// connect returns the operator's client and a context bounding the call.
func (o *opFlags) connect(env Env) (*client.Client, context.Context, context.CancelFunc, error) {
	c, err := o.client(env)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := opContext()
	return c, ctx, cancel, nil
}

func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// printJSON prints v as indented JSON. encoding/json escapes C0 control
// characters but leaves DEL, C1 and bidirectional controls raw; printable
// escapes those too, which keeps the JSON valid and equal in value.
func printJSON(env Env, v any) error {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := io.WriteString(env.Stdout, printable(strings.TrimSuffix(b.String(), "\n"))+"\n")
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
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate") {
		return usageErr("want 'keys list' or 'keys rotate'")
	}
	fs := newFlags(env, "keys "+args[0])
	var o opFlags
	o.register(env, fs)
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	use := fs.String("use", "access", "with rotate: access (access tokens, status lists) or events (Shared Signals SETs)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *use != "access" && *use != "events" {
		return usageErr("--use must be access or events")
	}
	c, ctx, cancel, err := o.connect(env)
	if err != nil {
		return err
	}
	defer cancel()
	if args[0] == "rotate" {
		rotate := c.RotateKey
		if *use == "events" {
			rotate = c.RotateEventKey
		}
		k, err := rotate(ctx, *reason)
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
	list, err := c.Keys(ctx)
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
	if len(args) == 0 || args[0] != "list" {
		return usageErr("want 'sessions list --subject S'")
	}
	fs := newFlags(env, "sessions list")
	var o opFlags
	o.register(env, fs)
	subject := fs.String("subject", "", "the subject whose sessions to list (required)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *subject == "" {
		return usageErr("--subject is required")
	}
	c, ctx, cancel, err := o.connect(env)
	if err != nil {
		return err
	}
	defer cancel()
	list, err := c.Sessions(ctx, *subject)
	if err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(env, list)
	}
	var rows [][]string
	for _, s := range list {
		rows = append(rows, []string{s.ID, s.Device, ts(s.CreatedAt), ts(s.LastRefreshedAt), ts(s.ExpiresAt)})
	}
	table(env, "SESSION\tDEVICE\tCREATED\tLAST REFRESHED\tEXPIRES", rows)
	return nil
}

func revoke(env Env, args []string) error {
	fs := newFlags(env, "revoke")
	var o opFlags
	o.register(env, fs)
	sid := fs.String("session", "", "revoke one session (sign out one device)")
	subject := fs.String("subject", "", "revoke a subject's tokens issued before now")
	from := fs.String("subjects-from", "", "revoke every subject listed in this file, one per line (/dev/stdin for standard input), 10,000 per call")
	scope := fs.String("scope", "sessions", "with --subject or --subjects-from: sessions (sign out everywhere) or access (cut off access tokens only)")
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	if err := parse(fs, args); err != nil {
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
		return revokeSubjectsFrom(env, o, *from, *scope, *reason)
	}
	c, ctx, cancel, err := o.connect(env)
	if err != nil {
		return err
	}
	defer cancel()
	var r client.Revocation
	if *sid != "" {
		r, err = c.RevokeSession(ctx, client.SessionRevocation{SessionID: *sid, Reason: *reason})
	} else {
		r, err = c.RevokeSubject(ctx, client.SubjectRevocation{Subject: *subject, Scope: *scope, Reason: *reason})
	}
	if err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(env, r)
	}
	if !r.Revoked {
		fmt.Fprintln(env.Stdout, "already revoked; nothing changed")
		return nil
	}
	fmt.Fprintf(env.Stdout, "revoked (revocation log seq %d)\n", r.Entry.Seq)
	return nil
}

func audit(env Env, args []string) error {
	fs := newFlags(env, "audit")
	var o opFlags
	o.register(env, fs)
	after := fs.Int64("after", 0, "only records with id greater than this")
	limit := fs.Int("limit", 100, "at most this many records")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, ctx, cancel, err := o.connect(env)
	if err != nil {
		return err
	}
	defer cancel()
	records, err := c.Audit(ctx, client.AuditQuery{After: *after, Limit: *limit})
	if err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(env, records)
	}
	var rows [][]string
	for _, r := range records {
		rows = append(rows, []string{fmt.Sprint(r.ID), ts(r.At), r.Action, r.Target, r.By, r.Reason})
	}
	table(env, "ID\tAT\tACTION\tTARGET\tBY\tREASON", rows)
	return nil
}
