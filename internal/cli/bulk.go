package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/tegata-dev/tegata/client"
)

// subjectLine is a subject read from a --subjects-from file, with its line.
type subjectLine struct {
	subject string
	line    int
}

// readSubjects reads one subject per line; blank lines are skipped. Lines
// are taken as they are, but for their line end (LF or CRLF): a subject may
// contain spaces.
func readSubjects(path string) ([]subjectLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []subjectLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for n := 1; sc.Scan(); n++ {
		if s := strings.TrimSuffix(sc.Text(), "\r"); strings.TrimSpace(s) != "" {
			out = append(out, subjectLine{subject: s, line: n})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no subjects in it (one per line)", path)
	}
	return out, nil
}

// revokeSubjectsFrom revokes the subjects listed in a file with bulk calls
// of up to client.MaxRevokeItems each. Each call is all or nothing; a
// failed one stops the command, naming the line at fault and how far the
// calls before it got.
func revokeSubjectsFrom(env Env, o opFlags, path, scope, reason string) error {
	subs, err := readSubjects(path)
	if err != nil {
		return err
	}
	c, err := o.client(env)
	if err != nil {
		return err
	}
	type outcome struct {
		Subject string `json:"subject"`
		client.ItemOutcome
	}
	var all []outcome
	for start := 0; start < len(subs); start += client.MaxRevokeItems {
		chunk := subs[start:min(start+client.MaxRevokeItems, len(subs))]
		items := make([]client.RevokeItem, len(chunk))
		for i, s := range chunk {
			items[i] = client.RevokeItem{Subject: s.subject, Scope: scope}
		}
		ctx, cancel := opContext()
		res, err := c.RevokeMany(ctx, items, reason)
		cancel()
		if err != nil {
			return bulkFailure(err, chunk, start)
		}
		for i, r := range res {
			all = append(all, outcome{Subject: chunk[i].subject, ItemOutcome: r})
		}
	}
	if o.jsonOut {
		return printJSON(env, struct {
			Revoked []outcome `json:"revoked"`
		}{all})
	}
	fmt.Fprintf(env.Stdout, "revoked %d subjects (revocation log seqs %d to %d)\n", len(all), all[0].Seq, all[len(all)-1].Seq)
	return nil
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
	return fmt.Errorf("%w; the %d subjects before line %d were revoked, none from it on", err, done, chunk[0].line)
}
