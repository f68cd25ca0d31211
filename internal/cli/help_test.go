package cli

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestHelpComplete: every command has a doc with a usage line, a summary,
// a description and an example; every subcommand named has one too; the
// general help lists every command; and every environment variable a flag
// reads is in its command's Environment section.
func TestHelpComplete(t *testing.T) {
	for name := range commands {
		if !slices.Contains(order, name) {
			t.Errorf("command %q is missing from the general help (order)", name)
		}
	}
	for name, d := range docs {
		if d.usage == "" || d.summary == "" || d.about == "" || d.example == "" {
			t.Errorf("doc of %q lacks a usage, summary, description or example: %+v", name, d)
		}
		for _, s := range d.subs {
			if _, ok := docs[name+" "+s]; !ok {
				t.Errorf("subcommand %q %q has no doc", name, s)
			}
		}
	}
	for _, name := range order {
		if _, ok := docs[name]; !ok {
			t.Errorf("command %q has no doc", name)
		}
	}
	envRef := regexp.MustCompile(`env (TEGATA_[A-Z_]+)`)
	for _, path := range leafCommands() {
		code, out := runCLI(append(strings.Fields(path), "-h"), nil)
		if code != 0 {
			t.Errorf("tegata %s -h = exit %d, want 0\n%s", path, code, out)
			continue
		}
		for _, m := range envRef.FindAllStringSubmatch(flagSection(out), -1) {
			if !strings.Contains(envSection(out), m[1]) {
				t.Errorf("tegata %s -h: a flag reads %s, but the Environment section does not list it\n%s", path, m[1], out)
			}
		}
	}
}

// TestGeneralHelpNamesOperatorCommands: the general help's list of the
// commands that call an authority has every command that takes an admin
// key (it once left out streams).
func TestGeneralHelpNamesOperatorCommands(t *testing.T) {
	_, general := runCLI([]string{"help"}, nil)
	_, sentence, _ := strings.Cut(general, "Operator commands (")
	sentence, _, _ = strings.Cut(sentence, ")")
	listed := strings.Split(sentence, ", ")
	for _, path := range leafCommands() {
		_, out := runCLI(append(strings.Fields(path), "-h"), nil)
		top := strings.Fields(path)[0]
		if strings.Contains(flagSection(out), "--key-file") && strings.Contains(envSection(out), "TEGATA_API_KEY") &&
			!slices.Contains(listed, top) {
			t.Errorf("tegata help lists operator commands %q, without %q, which takes the admin key", listed, top)
		}
	}
}

// leafCommands lists every command that has flags of its own.
func leafCommands() []string {
	var out []string
	for _, name := range order {
		if name == "help" {
			continue
		}
		if subs := docs[name].subs; len(subs) > 0 {
			for _, s := range subs {
				out = append(out, name+" "+s)
			}
			continue
		}
		out = append(out, name)
	}
	return out
}

func flagSection(help string) string {
	_, after, _ := strings.Cut(help, "\nFlags:\n")
	before, _, _ := strings.Cut(after, "\nEnvironment:\n")
	return before
}

func envSection(help string) string {
	_, after, _ := strings.Cut(help, "\nEnvironment:\n")
	return after
}

// TestReorder: flags may follow positional arguments, a flag's value may
// start with '-', "--" ends the flags, and an unknown '-' argument is an
// argument for a command that takes them (an id) and an error otherwise.
func TestReorder(t *testing.T) {
	tests := []struct {
		name      string
		takesArgs bool
		args      []string
		wantPos   []string
		wantR     string
		wantErr   string
	}{
		{"flags after the argument", true, []string{"ID", "--reason", "r"}, []string{"ID"}, "r", ""},
		{"flags before", true, []string{"--reason=r", "ID"}, []string{"ID"}, "r", ""},
		{"id that starts with -", true, []string{"-Ab3_x", "--reason", "r"}, []string{"-Ab3_x"}, "r", ""},
		{"value that starts with -", true, []string{"--reason", "-because", "ID"}, []string{"ID"}, "-because", ""},
		{"after --", true, []string{"--", "--reason"}, []string{"--reason"}, "", ""},
		{"unknown flag, no arguments taken", false, []string{"--nope"}, nil, "", "flag provided but not defined"},
		{"value missing at the end", true, []string{"ID", "--reason"}, nil, "", "flag needs an argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFlags(Env{}, "test")
			fs.takesArgs = tt.takesArgs
			reason := fs.String("reason", "", "")
			fs.Bool("json", false, "")
			err := parse(fs, tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse(%q) = %v, want %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(fs.Args(), tt.wantPos) || *reason != tt.wantR {
				t.Errorf("parse(%q) = %v: args %q, reason %q; want %q, %q", tt.args, err, fs.Args(), *reason, tt.wantPos, tt.wantR)
			}
		})
	}
}
