package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// errNotConfirmed: a revocation with --confirm was recorded, but the wait
// ran out before it was in force on every verifier (exit code 3).
var errNotConfirmed = errors.New("revoked, but not yet in force on every verifier")

// verifiers is 'tegata verifiers': who follows the feed, across nodes.
func verifiers(env Env, args []string) error {
	fs, o := newOpFlags(env, "verifiers")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	var l client.Verifiers
	err := o.call(env, 0, func(ctx context.Context, c *client.Client) (err error) {
		l, err = c.Verifiers(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(env, l)
	}
	rows := make([][]string, 0, len(l.Verifiers))
	for _, v := range l.Verifiers {
		rows = append(rows, []string{orDash(v.Name), v.ID, orDash(v.Host), v.NodeURL, v.State,
			strconv.FormatInt(v.Position, 10), fmt.Sprintf("%d (%s)", v.LagEntries, time.Duration(v.LagMS)*time.Millisecond),
			ts(v.LastHeard), (time.Duration(v.StaleAfterMS) * time.Millisecond).String()})
	}
	table(env, "NAME\tID\tHOST\tFOLLOWS\tSTATE\tPOSITION\tLAG\tLAST HEARD\tSTALE AFTER", rows)
	fmt.Fprintf(env.Stdout, "%s; log head %d\n", plural(len(l.Verifiers), "verifier"), l.Head)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printConfirmation says whether a revocation is in force, naming the
// verifiers it waits for, and returns errNotConfirmed if it is not.
func printConfirmation(env Env, c *client.Confirmation) error {
	if c == nil {
		return nil
	}
	if c.InForce {
		fmt.Fprintf(env.Stdout, "in force on every verifier (%d confirmed) after %d ms\n", c.Confirmed, c.WaitedMS)
		return nil
	}
	pending := max(c.PendingCount, len(c.Pending))
	named := ""
	if pending > len(c.Pending) {
		named = fmt.Sprintf(" (the first %d named)", len(c.Pending))
	}
	fmt.Fprintf(env.Stdout, "NOT yet in force after %d ms: %s pending%s, %d confirmed\n", c.WaitedMS, plural(pending, "verifier"), named, c.Confirmed)
	rows := make([][]string, 0, len(c.Pending))
	for _, p := range c.Pending {
		rows = append(rows, []string{orDash(p.Name), p.ID, orDash(p.Host), strconv.FormatInt(p.Position, 10), ts(p.LastHeard)})
	}
	if len(rows) > 0 {
		table(env, "NAME\tID\tHOST\tPOSITION\tLAST HEARD", rows)
	}
	return errNotConfirmed
}
