package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// subjectLine is a subject read from a --subjects-from file, with its line.
type subjectLine struct {
	subject string
	line    int
}

// readSubjects reads one subject per line from path ("-": standard input).
// Each line is trimmed of surrounding whitespace (the authority refuses a
// subject with any, and a pasted column or a CRLF file has some); blank
// lines and lines starting with '#' are skipped. A subject may contain
// inner spaces.
func readSubjects(env Env, path string) ([]subjectLine, error) {
	var r io.Reader
	name := path
	if path == "-" {
		if env.Stdin == nil {
			return nil, usageErr("--subjects-from -: no standard input")
		}
		r, name = env.Stdin, "standard input"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var out []subjectLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 1; sc.Scan(); n++ {
		if s := strings.TrimSpace(sc.Text()); s != "" && !strings.HasPrefix(s, "#") {
			out = append(out, subjectLine{subject: s, line: n})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no subjects in it (one per line; blank lines and # comments are skipped)", name)
	}
	return out, nil
}

// subjectOutcome is what the bulk calls did with one listed subject.
type subjectOutcome struct {
	Subject string `json:"subject"`
	Line    int    `json:"line"`
	client.ItemOutcome
}

// revokeSubjectsFrom revokes the subjects listed in a file with bulk calls
// of up to client.MaxRevokeItems each. Each call is all or nothing; a
// failed one stops the command, naming the line at fault and how far the
// calls before it got. With confirm, the last call waits: the log is one
// sequence, so its last entry in force means every earlier one is too.
// Every subject is revoked with each's Scope and Claims.
func revokeSubjectsFrom(env Env, o *opFlags, path string, each client.RevokeItem, reason string, confirm time.Duration) error {
	subs, err := readSubjects(env, path)
	if err != nil {
		return err
	}
	c, err := o.client(env)
	if err != nil {
		return err
	}
	var all []subjectOutcome
	var conf *client.Confirmation
	for start := 0; start < len(subs); start += client.MaxRevokeItems {
		chunk := subs[start:min(start+client.MaxRevokeItems, len(subs))]
		req := client.BulkRevocation{Items: make([]client.RevokeItem, len(chunk)), Reason: reason}
		for i, s := range chunk {
			req.Items[i] = client.RevokeItem{Subject: s.subject, Scope: each.Scope, Claims: each.Claims}
		}
		if start+len(chunk) == len(subs) {
			req.Confirm = confirm
		}
		ctx, cancel := opContext(confirm)
		res, err := c.RevokeMany(ctx, req)
		cancel()
		if err != nil {
			return bulkFailure(o.explain(err), chunk, start)
		}
		for i, r := range res.Items {
			all = append(all, subjectOutcome{Subject: chunk[i].subject, Line: chunk[i].line, ItemOutcome: r})
		}
		conf = res.Confirmation
	}
	if o.jsonOut {
		err := printJSON(env, struct {
			Revoked      []subjectOutcome     `json:"revoked"`
			Confirmation *client.Confirmation `json:"confirmation,omitempty"`
		}{all, conf})
		if err != nil || conf == nil || conf.InForce {
			return err
		}
		return errNotConfirmed
	}
	fmt.Fprintf(env.Stdout, "revoked %s (revocation log seqs %d to %d)\n", plural(len(all), "subject"), all[0].Seq, all[len(all)-1].Seq)
	printNoSessions(env, all)
	return printConfirmation(env, conf)
}

// maxListed bounds the subjects without a session named in text output
// (--json lists every outcome).
const maxListed = 20

// printNoSessions names the subjects that had no live session: each was
// still cut off (a session created later is not affected), but a typo in
// the file looks exactly like this.
func printNoSessions(env Env, all []subjectOutcome) {
	var none []subjectOutcome
	for _, o := range all {
		if o.Sessions == 0 {
			none = append(none, o)
		}
	}
	if len(none) == 0 {
		return
	}
	fmt.Fprintf(env.Stdout, "%s had no live session (a typo, or signed out already?):\n", plural(len(none), "subject"))
	for _, o := range none[:min(len(none), maxListed)] {
		fmt.Fprintf(env.Stdout, "  line %d: %s\n", o.Line, printable(strconv.Quote(o.Subject)))
	}
	if len(none) > maxListed {
		fmt.Fprintf(env.Stdout, "  and %d more (--json lists every subject with its session count)\n", len(none)-maxListed)
	}
}

// plural is "1 subject", "2 subjects".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

var itemIndex = regexp.MustCompile(`^items\[(\d+)\]: `)

// bulkFailure explains a failed bulk call in terms of the file's lines.
func bulkFailure(err error, chunk []subjectLine, done int) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		if m := itemIndex.FindStringSubmatch(ce.Description); m != nil {
			if i, _ := strconv.Atoi(m[1]); i < len(chunk) {
				err = fmt.Errorf("line %d: %s", chunk[i].line, ce.Description[len(m[0]):])
			}
		}
	}
	if done == 0 {
		return fmt.Errorf("%w; nothing was revoked", err)
	}
	return fmt.Errorf("%w; the %s before line %d were revoked, none from it on", err, plural(done, "subject"), chunk[0].line)
}
