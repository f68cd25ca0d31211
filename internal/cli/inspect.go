package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/token"
	"github.com/tegata-dev/tegata/verifier"
)

// errInvalidToken makes `token inspect` exit 1 after it has explained why.
var errInvalidToken = errors.New("token is not valid")

func tokenCmd(env Env, args []string) error {
	if len(args) == 0 || args[0] != "inspect" {
		return usageErr("want 'token inspect TOKEN'")
	}
	fs := newFlags(env, "token inspect")
	var o opFlags
	o.register(env, fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("want exactly one TOKEN argument ('-' reads it from standard input is not supported; quote it)")
	}
	raw := strings.TrimSpace(fs.Arg(0))
	header, payload, err := token.Inspect(raw)
	if err != nil {
		fmt.Fprintf(env.Stdout, "not a tegata access token: %s\n", printable(err.Error()))
		return errInvalidToken
	}
	fmt.Fprintln(env.Stdout, "header:")
	_ = printJSON(env, header)
	fmt.Fprintln(env.Stdout, "payload:")
	_ = printJSON(env, payload)
	ctx, cancel := opContext()
	defer cancel()
	verdict, err := judge(ctx, env, &o, raw)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, printable(verdict))
	if !strings.HasPrefix(verdict, "VALID") {
		return errInvalidToken
	}
	return nil
}

// judge verifies the token against the authority's published keys and
// claims, then asks the authority whether it was revoked.
func judge(ctx context.Context, env Env, o *opFlags, raw string) (string, error) {
	public := &client.Client{BaseURL: o.authority}
	meta, err := public.Discovery(ctx)
	if err != nil {
		return "", fmt.Errorf("reach authority: %w", err)
	}
	keys, err := public.KeySet(ctx)
	if err != nil {
		return "", fmt.Errorf("fetch JWKS: %w", err)
	}
	leeway := verifier.DefaultLeeway
	if meta.Leeway > 0 {
		leeway = time.Duration(meta.Leeway) * time.Second // what the authority's verifiers allow
	}
	_, err = token.Verify(raw, keys, token.Expect{
		Issuer: meta.Issuer, Audience: meta.Audience, Algorithms: []string{token.EdDSA, token.ES256},
		Leeway: leeway, MaxLifetime: time.Duration(meta.MaxLifetime) * time.Second,
	}, time.Now())
	if err != nil {
		return "INVALID: " + err.Error(), nil
	}
	c, err := o.client(env)
	if err != nil {
		return "signature and claims are valid; revocation not checked: " + err.Error(), nil
	}
	res, err := c.Introspect(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("introspect: %w", err)
	}
	if !res.Active {
		return "INVALID: revoked (signature and claims are valid, but its session or subject was revoked)", nil
	}
	return "VALID: signature, claims and revocation state check out", nil
}
