package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tegata-dev/tegata/client"
)

// streams manages Shared Signals event streams (docs/standards.md).
func streams(env Env, args []string) error {
	return subcommand(env, "streams", args, map[string]func(Env, []string) error{
		"list": streamsList, "create": streamsCreate, "delete": streamsDelete,
	})
}

func streamsList(env Env, args []string) error {
	fs, o := newOpFlags(env, "streams list")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	var list []client.Stream
	err := o.call(env, 0, func(ctx context.Context, c *client.Client) (err error) {
		list, err = c.Streams(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(env, struct {
			Streams []client.Stream `json:"streams"`
		}{nonNil(list)})
	}
	if len(list) == 0 {
		fmt.Fprintln(env.Stdout, "no event streams (create one with 'tegata streams create').")
		return nil
	}
	var rows [][]string
	for _, s := range list {
		behind := strconv.FormatInt(s.State.Head-s.State.Position, 10)
		problem := s.State.LastError
		if s.State.FailedAttempts > 0 && s.State.NextAttempt != nil {
			problem = fmt.Sprintf("%d failed, retry %s: %s", s.State.FailedAttempts, ts(*s.State.NextAttempt), problem)
		}
		rows = append(rows, []string{printable(s.ID), method(s.Delivery.Method), printable(s.Delivery.EndpointURL),
			printable(s.State.Status), strconv.FormatInt(s.State.Delivered, 10), behind, printable(problem)})
	}
	table(env, "STREAM\tDELIVERY\tENDPOINT\tSTATUS\tDELIVERED\tBEHIND\tLAST ERROR", rows)
	return nil
}

func method(m string) string {
	switch m {
	case client.DeliveryPush:
		return "push"
	case client.DeliveryPoll:
		return "poll"
	}
	return printable(m)
}

func streamsCreate(env Env, args []string) error {
	fs, o := newOpFlags(env, "streams create")
	var s client.NewStream
	fs.StringVar(&s.PushURL, "push", "", "push SETs to this https:// URL (RFC 8935)")
	poll := fs.Bool("poll", false, "let the receiver poll for SETs (RFC 8936)")
	fs.StringVar(&s.AuthorizationHeader, "auth-header", "", "Authorization header value sent with every push (e.g. 'Bearer ...')")
	events := fs.String("events", "", "comma-separated event type URIs wanted (default: every supported one)")
	fs.StringVar(&s.Audience, "aud", "", "aud of the stream's SETs (default: the push URL, or the poll endpoint)")
	fs.StringVar(&s.Description, "description", "", "a note for people")
	fs.StringVar(&s.PollKey, "poll-key", "", "with --poll: the id of the API key the receiver polls with, the only one that may (default: the key running this command)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if (s.PushURL == "") == !*poll {
		return usageErr("give exactly one of --push URL or --poll")
	}
	if s.PollKey != "" && !*poll {
		return usageErr("--poll-key applies to --poll streams only")
	}
	if *events != "" {
		s.Events = strings.Split(*events, ",")
	}
	var st client.Stream
	err := o.call(env, 0, func(ctx context.Context, c *client.Client) (err error) {
		st, err = c.CreateStream(ctx, s)
		return err
	})
	if err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(env, st)
	}
	fmt.Fprintf(env.Stdout, "created stream %s (%s, aud %s)\n", printable(st.ID), method(st.Delivery.Method), printable(st.Audience))
	if *poll {
		fmt.Fprintf(env.Stdout, "the receiver polls %s with the API key %s, and no other\n", printable(st.Delivery.EndpointURL), printable(st.PollKey))
	}
	return nil
}

func streamsDelete(env Env, args []string) error {
	fs, o := newOpFlags(env, "streams delete")
	fs.takesArgs = true
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("want exactly one stream ID (see 'tegata streams list'), got %d arguments%s", fs.NArg(), flagHint(fs.Args()))
	}
	id := fs.Arg(0)
	err := o.call(env, 0, func(ctx context.Context, c *client.Client) error {
		return c.DeleteStream(ctx, id)
	})
	if err != nil {
		return err
	}
	if o.jsonOut {
		return printJSON(env, struct {
			ID      string `json:"stream_id"`
			Deleted bool   `json:"deleted"`
		}{id, true})
	}
	fmt.Fprintf(env.Stdout, "deleted stream %s\n", printable(id))
	return nil
}
