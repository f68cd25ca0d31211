package cli

import (
	"context"
	"errors"
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
	fs, o := newOpFlags(env, "apikeys create")
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
	var k client.APIKey
	err := o.call(env, 0, func(ctx context.Context, c *client.Client) (err error) {
		k, err = c.CreateAPIKey(ctx, client.APIKeyRequest{Name: *name, Role: *role, Reason: *reason})
		return err
	})
	if errors.Is(err, client.ErrConflict) {
		return nameTaken(env, o, *name, err)
	}
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

// nameTaken completes the authority's refusal of a taken name with the
// command that revokes the key holding it. (Nothing was printed on
// standard output: a file the shell sent it to is left empty.)
func nameTaken(env Env, o *opFlags, name string, err error) error {
	id := ""
	_ = o.call(env, 0, func(ctx context.Context, c *client.Client) error {
		list, err := c.APIKeys(ctx)
		for _, k := range list {
			if k.Name == name {
				id = k.ID
			}
		}
		return err
	})
	if id == "" {
		return fmt.Errorf("%w (another --name, or tegata apikeys list and revoke)", err)
	}
	return fmt.Errorf("%w (to revoke it: tegata apikeys revoke %s)", err, id)
}

func apikeysList(env Env, args []string) error {
	fs, o := newOpFlags(env, "apikeys list")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	var list []client.APIKey
	err := o.call(env, 0, func(ctx context.Context, c *client.Client) (err error) {
		list, err = c.APIKeys(ctx)
		return err
	})
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
	fs, o := newOpFlags(env, "apikeys revoke")
	reason := fs.String("reason", "", "why (recorded in the audit trail)")
	fs.takesArgs = true
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("want exactly one ID (see 'tegata apikeys list'), got %d arguments%s", fs.NArg(), flagHint(fs.Args()))
	}
	id := fs.Arg(0)
	err := o.call(env, 0, func(ctx context.Context, c *client.Client) error {
		return c.RevokeAPIKey(ctx, client.APIKeyRevocation{ID: id, Reason: *reason})
	})
	if err != nil {
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
