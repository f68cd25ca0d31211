package cli

import (
	"fmt"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
)

func apikeys(env Env, args []string) error {
	return subcommand(env, "apikeys", args, map[string]func(Env, []string) error{
		"create": apikeysCreate, "list": apikeysList, "revoke": apikeysRevoke,
	})
}

// apikeysCreate prints the new key alone on stdout, so that
// `tegata apikeys create --name x > file` captures just the secret, and
// everything else on stderr.
func apikeysCreate(env Env, args []string) error {
	fs := newFlags(env, "apikeys create")
	var o opFlags
	o.register(env, fs)
	name := fs.String("name", "", "the key's name, 1-64 of A-Z a-z 0-9 . _ - (required)")
	role := fs.String("role", "admin", "admin (every call), feed (read-only: feed, JWKS, introspection) or gate (a web gate: feed, introspection, sessions)")
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usageErr("--name is required")
	}
	if !authority.ValidRole(*role) {
		return usageErr("--role must be admin, feed or gate")
	}
	c, ctx, cancel, err := o.connect(env)
	if err != nil {
		return err
	}
	defer cancel()
	k, err := c.CreateAPIKey(ctx, client.APIKeyRequest{Name: *name, Role: *role, Reason: *reason})
	if err != nil {
		return err
	}
	if o.jsonOut {
		err = printJSON(env, k)
	} else {
		_, err = fmt.Fprintln(env.Stdout, k.Key)
	}
	fmt.Fprintf(env.Stderr, "created API key %q (id %s, role %s).\n"+
		"Store the key now, e.g. in your secret manager: it is shown only this once; the authority keeps only its hash.\n",
		k.Name, printable(k.ID), printable(k.Role))
	return err
}

func apikeysList(env Env, args []string) error {
	fs := newFlags(env, "apikeys list")
	var o opFlags
	o.register(env, fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	c, ctx, cancel, err := o.connect(env)
	if err != nil {
		return err
	}
	defer cancel()
	list, err := c.APIKeys(ctx)
	if err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(env, struct {
			Keys []client.APIKey `json:"keys"`
		}{list})
	}
	var rows [][]string
	for _, k := range list {
		rows = append(rows, []string{k.ID, k.Name, k.Role, ts(k.CreatedAt)})
	}
	table(env, "ID\tNAME\tROLE\tCREATED", rows)
	return nil
}

func apikeysRevoke(env Env, args []string) error {
	fs := newFlags(env, "apikeys revoke")
	var o opFlags
	o.register(env, fs)
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	fs.takesArgs = true
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("want exactly one ID (see 'tegata apikeys list'), got %d arguments%s", fs.NArg(), flagHint(fs.Args()))
	}
	id := fs.Arg(0)
	c, ctx, cancel, err := o.connect(env)
	if err != nil {
		return err
	}
	defer cancel()
	if err := c.RevokeAPIKey(ctx, client.APIKeyRevocation{ID: id, Reason: *reason}); err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(env, struct {
			ID      string `json:"id"`
			Revoked bool   `json:"revoked"`
		}{id, true})
	}
	fmt.Fprintf(env.Stdout, "revoked API key %s: the authority that answered refuses it now, other authority nodes within %v\n",
		printable(id), authority.APIKeyCacheTTL)
	return nil
}
