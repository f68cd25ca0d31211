package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/token"
	"github.com/tegata-dev/tegata/verifier"
)

// errInvalidToken makes `token inspect` exit 1 after it has explained why.
var errInvalidToken = errors.New("token is not valid")

func tokenCmd(env Env, args []string) error {
	return subcommand(env, "token", args, map[string]func(Env, []string) error{"inspect": tokenInspect})
}

// inspection is what `token inspect --json` prints.
type inspection struct {
	Header  map[string]any `json:"header,omitempty"`
	Payload map[string]any `json:"payload,omitempty"`
	Valid   bool           `json:"valid"`
	Verdict string         `json:"verdict"`
}

func tokenInspect(env Env, args []string) error {
	fs, o := newOpFlags(env, "token inspect")
	fs.takesArgs = true
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("want exactly one TOKEN (or - to read it from standard input), got %d arguments%s", fs.NArg(), flagHint(fs.Args()))
	}
	raw, err := tokenArg(env, fs.Arg(0))
	if err != nil {
		return err
	}
	var out inspection
	header, payload, err := token.Inspect(raw)
	if err != nil {
		out.Verdict = "not a tegata access token: " + err.Error() + tokenHint(raw)
		return report(env, o, out)
	}
	out.Header, out.Payload = header, payload
	ctx, cancel := opContext(0)
	defer cancel()
	if out.Verdict, out.Valid, err = judge(ctx, env, o, raw); err != nil {
		return err
	}
	return report(env, o, out)
}

// report prints the inspection and makes the exit status 1 for a token
// that is not valid.
func report(env Env, o *opFlags, out inspection) error {
	if o.jsonOut {
		if err := printJSON(env, out); err != nil {
			return err
		}
	} else {
		if out.Header != nil {
			fmt.Fprintln(env.Stdout, "header:")
			_ = printJSON(env, out.Header)
			fmt.Fprintln(env.Stdout, "payload:")
			_ = printJSON(env, out.Payload)
		}
		fmt.Fprintln(env.Stdout, printable(out.Verdict))
	}
	if !out.Valid {
		return errInvalidToken
	}
	return nil
}

// tokenArg returns the token of the TOKEN argument ("-": standard input)
// as it would be sent, leaving out what is often copied with it: an
// "Authorization:" header name, the "Bearer " scheme, surrounding quotes
// and whitespace. It says on standard error what it left out.
func tokenArg(env Env, arg string) (string, error) {
	raw := arg
	if arg == "-" {
		if env.Stdin == nil {
			return "", usageErr("no standard input to read the token from")
		}
		b, err := io.ReadAll(io.LimitReader(env.Stdin, 1<<20))
		if err != nil {
			return "", fmt.Errorf("read the token from standard input: %w", err)
		}
		raw = string(b)
	}
	raw = strings.TrimSpace(raw)
	var dropped []string
	if len(raw) > 14 && strings.EqualFold(raw[:14], "authorization:") {
		raw, dropped = strings.TrimSpace(raw[14:]), append(dropped, `"Authorization:"`)
	}
	if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
		raw, dropped = strings.TrimSpace(raw[7:]), append(dropped, `"Bearer "`)
	}
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw, dropped = raw[1:len(raw)-1], append(dropped, "the quotes")
	}
	if len(dropped) > 0 {
		fmt.Fprintf(env.Stderr, "note: left out %s around the token\n", strings.Join(dropped, " and "))
	}
	return raw, nil
}

// tokenHint adds what a malformed token most likely is to its error.
func tokenHint(raw string) string {
	switch {
	case strings.ContainsAny(raw, " \t\r\n"):
		return " (the argument has spaces or line breaks inside: quote the token, or give only the token)"
	case strings.HasPrefix(raw, "tgk_"):
		return " (this looks like an API key, not an access token)"
	case strings.Count(raw, ".") != 2:
		n, dots := strings.Count(raw, "."), "dots"
		if n == 1 {
			dots = "dot"
		}
		return fmt.Sprintf(" (an access token is three base64url parts separated by two dots; this has %d %s: was it cut off?)", n, dots)
	}
	return ""
}

// judge verifies the token against the authority's published keys and
// claims, then asks the authority whether it was revoked.
func judge(ctx context.Context, env Env, o *opFlags, raw string) (verdict string, valid bool, err error) {
	base, err := o.pick(ctx)
	if err != nil {
		return "", false, err
	}
	o.base = base
	public := &client.Client{BaseURL: base}
	meta, err := public.Discovery(ctx)
	if err != nil {
		return "", false, fmt.Errorf("reach authority: %w", err)
	}
	keys, err := public.KeySet(ctx)
	if err != nil {
		return "", false, fmt.Errorf("fetch JWKS: %w", err)
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
		return "INVALID: " + err.Error(), false, nil
	}
	key, err := apiKeyFrom(env, o.keyFile)
	if err != nil {
		return "signature and claims are valid; revocation not checked: " + err.Error(), false, nil
	}
	o.keySource = key.source
	res, err := (&client.Client{BaseURL: base, APIKey: key.value}).Introspect(ctx, raw)
	if err != nil {
		return "", false, fmt.Errorf("introspect: %w", o.explain(err))
	}
	if !res.Active {
		return "INVALID: revoked (signature and claims are valid, but its session or subject was revoked)", false, nil
	}
	return "VALID: signature, claims and revocation state check out", true, nil
}
