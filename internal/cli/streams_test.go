package cli

import (
	"strings"
	"testing"
)

func TestStreamsUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no verb", []string{"streams"}, "want a subcommand: list, create, delete"},
		{"bad verb", []string{"streams", "update"}, `unknown subcommand "update"`},
		{"create: neither", []string{"streams", "create"}, "exactly one of --push URL or --poll"},
		{"create: both", []string{"streams", "create", "--poll", "--push", "https://rx.example/"}, "exactly one of"},
		{"create: poll key for a push stream", []string{"streams", "create", "--push", "https://rx.example/", "--poll-key", "k"}, "--poll-key applies to --poll streams only"},
		{"delete: no ID", []string{"streams", "delete"}, "exactly one stream ID"},
		{"delete: two IDs", []string{"streams", "delete", "a", "b"}, "exactly one stream ID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI(tc.args, map[string]string{"TEGATA_API_KEY": "k"})
			if code != 2 || !strings.Contains(out, tc.want) {
				t.Fatalf("tegata %v = exit %d\n%s\nwant exit 2 mentioning %q", tc.args, code, out, tc.want)
			}
		})
	}
}

// TestStreamsCommands drives create, list and delete against a real
// authority.
func TestStreamsCommands(t *testing.T) {
	r, env := startServer(t)
	code, out, errOut := runSplit([]string{"streams", "create", "--poll", "--description", "siem"}, env)
	if code != 0 || !strings.Contains(out, "created stream ") || !strings.Contains(out, r.URL+"/ssf/poll/") || !strings.Contains(out, "with the API key ") {
		t.Fatalf("streams create --poll = exit %d\n%s%s", code, out, errOut)
	}
	id := strings.Fields(strings.TrimPrefix(out, "created stream "))[0]
	code, out, errOut = runSplit([]string{"streams", "create", "--push", "http://127.0.0.1:1/"}, env)
	if code != 1 || !strings.Contains(errOut, "https://") {
		t.Errorf("streams create --push http://127.0.0.1:1/ = exit %d\n%s%s, want a refusal naming https://", code, out, errOut)
	}
	code, out, _ = runSplit([]string{"streams", "list"}, env)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "poll") || !strings.Contains(out, "enabled") {
		t.Fatalf("streams list = exit %d\n%s", code, out)
	}
	if code, out, errOut = runSplit([]string{"streams", "delete", id}, env); code != 0 {
		t.Fatalf("streams delete = exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runSplit([]string{"streams", "list"}, env)
	if code != 0 || strings.Contains(out, id) {
		t.Errorf("streams list after delete = exit %d\n%s", code, out)
	}
	if code, _, errOut = runSplit([]string{"streams", "delete", id}, env); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("streams delete (again) = exit %d\n%s, want a 404", code, errOut)
	}
}
