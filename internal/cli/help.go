package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// doc is what the help of one command says. Every command and subcommand
// has one (TestHelpComplete): the flags come from the command's own flag
// set, everything else from here.
type doc struct {
	usage   string   // after "tegata "
	summary string   // one line, in the list of commands
	about   string   // what it does
	env     []string // "NAME\tmeaning"
	example string   // shell lines
	subs    []string // subcommands, in order, for a command made of them
}

// opEnv is the environment of every command that calls the authority.
var opEnv = []string{
	"TEGATA_AUTHORITY\tauthority URL, or several comma-separated: the first that answers is used (default http://127.0.0.1:8080)",
	"TEGATA_API_KEY\tadmin API key; when unset, --key-file is read",
	"TEGATA_DATA\tdata directory whose api-key file is the default --key-file (default ./tegata-data)",
	"TEGATA_CA_FILE\t--ca-file: CA certificates trusted for an https:// authority",
}

// order lists the top-level commands as the general help shows them.
var order = []string{"serve", "gate", "relay", "sessions", "revoke", "verifiers", "token", "keys", "apikeys", "streams", "audit", "version", "help"}

var docs = map[string]doc{
	"serve": {
		usage:   "serve [flags]",
		summary: "run the authority (embedded SQLite by default, Postgres with --db)",
		about: `Runs the authority: sessions, access tokens, refresh rotation, revocations, the
revocation feed, JWKS and discovery. With no --db it keeps everything in the data
directory (SQLite, a master key file, the bootstrap admin key file), locked against a
second process; with --db postgres://... any number of nodes share one database.
Nothing is created until the settings have been checked and the address is listened on.`,
		env: []string{
			"TEGATA_ADDR\t--addr",
			"TEGATA_DATA\t--data",
			"TEGATA_DB\t--db",
			"TEGATA_ISSUER\t--issuer",
			"TEGATA_AUDIENCE\t--audience",
			"TEGATA_MASTER_KEY\tmaster key (32 bytes, base64 or hex); else <data>/master.key, created on first start",
			"TEGATA_API_KEY\tbootstrap admin API key; else <data>/api-key, created on first start",
			"TEGATA_FEED_KEY\ta feed API key to install (for gates and verifiers)",
			"TEGATA_RATE_LIMITS\t--rate-limits",
			"TEGATA_TRUSTED_PROXIES\t--trusted-proxies",
			"TEGATA_METRICS_ADDR\t--metrics-addr",
			"TEGATA_AFTER_RESTORE\t--after-restore",
			"TEGATA_MASTER_KEY_OTHER\tduring a master key rotation: a second master key that opens sealed data, never seals",
		},
		example: `tegata serve
TEGATA_DB=postgres://tegata@db/tegata TEGATA_ISSUER=https://auth.example.com tegata serve --addr 0.0.0.0:8080`,
	},
	"gate": {
		usage:   "gate --authority URL[,URL...] [flags]",
		summary: "verify tokens for any service: forward-auth endpoint or reverse proxy (--web: browser sessions)",
		about: `Runs a verifier (signature, then the revocation set the authority's feed keeps current)
as an HTTP service: a forward-auth endpoint for nginx auth_request, Traefik ForwardAuth and
Envoy ext_authz (/auth), or with --upstream a reverse proxy. It listens at once and waits
for an authority (not ready on /readyz meanwhile); a key the authority refuses stops it.
It reads its key from TEGATA_FEED_KEY or --key-file, never the admin key. With --web it also
keeps browser sessions in cookies for the upstream app (docs/web.md), with a key of the gate
role from TEGATA_GATE_KEY. See docs/gate.md.`,
		env: []string{
			"TEGATA_AUTHORITY\t--authority",
			"TEGATA_FEED_KEY\tAPI key with the feed role; else --key-file",
			"TEGATA_GATE_KEY\twith --web: API key with the gate role; else --key-file",
			"TEGATA_GATE_LISTEN\t--listen",
			"TEGATA_GATE_NAME\t--name",
			"TEGATA_GATE_WEBSOCKET_ORIGINS\t--websocket-origins",
			"TEGATA_GATE_TRUSTED_PROXIES\t--trusted-proxies",
			"TEGATA_GATE_UNAVAILABLE_PAGE\t--unavailable-page",
			"TEGATA_GATE_WEB\t--web",
			"TEGATA_GATE_PUBLIC\t--public",
			"TEGATA_GATE_LOGIN_PATH\t--login-path",
			"TEGATA_GATE_LOGIN_HANDOFF_PATHS\t--login-handoff-paths",
			"TEGATA_GATE_ORIGIN\t--origin",
			"TEGATA_GATE_INSECURE_COOKIES\t--insecure-cookies",
			"TEGATA_GATE_COOKIE_SAMESITE\t--cookie-samesite",
			"TEGATA_GATE_REFRESH_PER_ADDRESS\t--refresh-per-address",
			"TEGATA_GATE_DBSC\t--dbsc",
		},
		example: `TEGATA_FEED_KEY=$(cat /run/secrets/feed-key) tegata gate --authority http://auth-1:8080,http://auth-2:8080
tegata gate --authority http://auth:8080 --upstream http://127.0.0.1:3000 --listen 0.0.0.0:8081`,
	},
	"relay": {
		usage:   "relay --upstream URL[,URL...] [flags]",
		summary: "serve the revocation feed to one machine's verifiers, following the nodes once for all of them",
		about: `Follows the authority nodes' feed as one verifier does and serves the same feed to the
verifiers and gates of its machine, which point their authority URL at it and keep their
key: a node then writes each revocation once per machine instead of once per verifier.
Run one per machine (a DaemonSet, a host service), listening on loopback. It grants its
verifiers no lease beyond its own, and reports to the nodes no further than every verifier
behind it holds, so ?confirm= waits for them. Besides the feed it passes on only
discovery, the key set and introspection, to the node it follows, and refuses any other
request (a web gate follows the nodes directly). It reads its key from TEGATA_FEED_KEY or
--key-file, and accepts only requests that carry the same key. /readyz answers 200 once it
has caught up and holds a lease. See docs/feed-protocol.md (Relays) and docs/scale.md.`,
		env: []string{
			"TEGATA_FEED_KEY	API key with the feed role; else --key-file",
			"TEGATA_RELAY_UPSTREAM	--upstream",
			"TEGATA_RELAY_LISTEN	--listen",
			"TEGATA_RELAY_STALE_AFTER	--stale-after",
			"TEGATA_RELAY_NAME	--name",
			"TEGATA_RELAY_KEY_FILE	--key-file",
			"TEGATA_RELAY_START_TIMEOUT	--start-timeout",
			"TEGATA_RELAY_CA_FILE	--ca-file",
			"TEGATA_RELAY_LOG_LEVEL	--log-level",
			"TEGATA_RELAY_LOG_FORMAT	--log-format",
		},
		example: `TEGATA_FEED_KEY=$(cat /run/secrets/feed-key) tegata relay --upstream http://auth-1:8080,http://auth-2:8080
tegata gate --authority http://127.0.0.1:8082 ...   # a verifier on the same machine`,
	},
	"keys": {
		usage:   "keys list|rotate [flags]",
		summary: "list or rotate the signing keys",
		about: `Signing keys sign access tokens (and status lists); verifiers learn them from the
authority's JWKS. A key of its own (RS256) signs Shared Signals events: --use events.`,
		subs:    []string{"list", "rotate"},
		example: "tegata keys list\ntegata keys rotate --reason 'yearly rotation'",
	},
	"keys list": {
		usage:   "keys list [flags]",
		summary: "list the signing keys and their state",
		about: `Lists the signing keys: pending (published, not signing yet), active (signing),
retired (verifying the tokens it signed) or expired.`,
		env:     opEnv,
		example: "tegata keys list --json",
	},
	"keys rotate": {
		usage:   "keys rotate [flags]",
		summary: "publish a new signing key",
		about: `Publishes a new signing key at once; every node signs with it after the authority's
--key-publish-delay, so that verifiers know it first. The previous key stays published
until the tokens it signed have expired. One rotation may be pending at a time.`,
		env:     opEnv,
		example: "tegata keys rotate --reason 'yearly rotation'\ntegata keys rotate --use events",
	},
	"sessions": {
		usage:   "sessions list --subject S [flags]",
		summary: "a subject's live sessions (its devices)",
		about:   `Sessions are what a user sees as devices; revoke one with 'tegata revoke --session ID'.`,
		subs:    []string{"list"},
		example: "tegata sessions list --subject alice",
	},
	"sessions list": {
		usage:   "sessions list --subject S [flags]",
		summary: "list a subject's live sessions, newest first",
		about: `Lists the subject's sessions that are neither revoked nor expired, newest first: at most
--limit of them, saying how many more there are.`,
		env:     opEnv,
		example: "tegata sessions list --subject alice\ntegata sessions list --subject alice --json",
	},
	"revoke": {
		usage:   "revoke --session ID | --subject S | --subjects-from FILE [flags]",
		summary: "sign out one session, or everything of a subject issued before now",
		about: `--session ID signs one device out. --subject S cuts a subject off: with --scope sessions
(the default) every session ends (sign out everywhere); with --scope access only the access
tokens issued so far are refused and sessions live on, so a role change bites at once.
--subjects-from FILE does the latter for every subject in a file (- reads standard input):
one per line, trimmed of surrounding spaces, blank lines and lines starting with # skipped;
it names the subjects that had no live session (a typo looks like that). Every verifier
following the authority refuses the tokens within moments. With --confirm D the
call waits up to D (capped by the authority) until the revocation is in force on every
verifier of the cluster: each has applied it or refuses every token. It then says so, or
names the verifiers still pending and exits 3 (the revocation is recorded either way).`,
		env: opEnv,
		example: `tegata revoke --session 3q2-7wEAAAAAAAAAAAAAAA --reason 'lost phone'
tegata revoke --subject alice --reason 'password changed' --confirm 5s
tegata revoke --subject alice --scope access --claims '{"roles":["viewer"]}' --reason 'role changed'
tegata revoke --subjects-from department-2.txt --reason 'department closed' --confirm 10s`,
	},
	"verifiers": {
		usage:   "verifiers [flags]",
		summary: "the gates and Go verifiers following the feed, on every node, and how current each is",
		about: `Lists every verifier heard within its staleness bound, on any authority node: its name
(--name of a gate, Config.Name in Go), instance id, host, the node it follows, the log
position it has applied, how far behind the log's head it is (entries, and how long
before it was last heard the oldest entry it lacked was recorded), when it was last heard,
its staleness bound and its state: current, behind, or stale (it says it is not current,
or has been silent for more than half its bound). Needs an admin (or gate) API key.`,
		env:     opEnv,
		example: "tegata verifiers\ntegata verifiers --json",
	},
	"token": {
		usage:   "token inspect TOKEN [flags]",
		summary: "decode an access token and say whether, and why not, it is valid",
		about:   `Helps find out why a token is refused.`,
		subs:    []string{"inspect"},
		example: `tegata token inspect "$AT"`,
	},
	"token inspect": {
		usage:   "token inspect TOKEN|- [flags]",
		summary: "decode a token, verify it against the authority and check its revocation",
		about: `Prints the token's header and payload, then checks it as a verifier would: signature
against the authority's JWKS, issuer, audience and times against its discovery document,
and revocation by asking the authority (introspection). Exits 0 when the token is valid
and 1 otherwise, saying why. TOKEN may be copied with its "Bearer " in front; "-" reads
it from standard input (which keeps it out of your shell history).`,
		env:     opEnv,
		example: "tegata token inspect eyJhbGciOiJFZERTQSIs...\npbpaste | tegata token inspect - --json",
	},
	"audit": {
		usage:   "audit [flags]",
		summary: "the audit trail: who revoked or rotated what, when and why",
		about: `Lists the audit trail, oldest first: revocations (by API key name, by a client's own
sign-out, or by the system on refresh token reuse), key rotations and API key changes, at
most --limit records after --after; when more exist it says how to get the next page.`,
		env:     opEnv,
		example: "tegata audit\ntegata audit --after 100 --limit 50",
	},
	"apikeys": {
		usage:   "apikeys create|list|revoke [flags]",
		summary: "API keys for app backends, gates and verifiers",
		about: `API keys authenticate callers of the authority: admin (every call), feed (read-only:
the feed, JWKS, introspection; for gates and verifiers) and gate (a web gate).`,
		subs:    []string{"create", "list", "revoke"},
		example: "tegata apikeys create --name edge-gate --role feed > feed-key",
	},
	"apikeys create": {
		usage:   "apikeys create --name N [--role admin|feed|gate] [flags]",
		summary: "create an API key (its secret is shown once)",
		about: `Creates an API key and prints its secret alone on standard output (the rest goes to
standard error), so that redirecting the output captures just the key. The authority keeps
only its hash: the secret is shown this once.`,
		env:     opEnv,
		example: "tegata apikeys create --name edge-gate --role feed > feed-key",
	},
	"apikeys list": {
		usage:   "apikeys list [flags]",
		summary: "list the live API keys (never their secrets)",
		about:   `Lists the live API keys: id, name, role and creation time.`,
		env:     opEnv,
		example: "tegata apikeys list",
	},
	"apikeys revoke": {
		usage:   "apikeys revoke ID [flags]",
		summary: "revoke an API key",
		about: `Revokes an API key by id (see 'tegata apikeys list'). The node that answers refuses it
at once, the others within seconds. The last admin key cannot be revoked. An ID that
starts with '-' may be given as is, or after --.`,
		env:     opEnv,
		example: "tegata apikeys revoke 9pS1bF0k2nQxLw3vT8yR4A --reason 'gate decommissioned'",
	},
	"streams": {
		usage:   "streams list|create|delete [flags]",
		summary: "Shared Signals (CAEP) event streams to receivers",
		about: `An event stream carries every revocation, as a CAEP event in a signed Security Event
Token, to one receiver: pushed to its HTTPS endpoint (RFC 8935) or polled by it
(RFC 8936), in log order, without losing any. See docs/standards.md.`,
		subs:    []string{"list", "create", "delete"},
		example: "tegata streams create --push https://rx.example.com/caep --auth-header 'Bearer ...'\ntegata streams list",
	},
	"streams list": {
		usage:   "streams list [flags]",
		summary: "list the event streams and how their delivery stands",
		about: `Lists every stream: its delivery, status (enabled, paused, disabled), how many events
it has delivered, how many it is behind the revocation log, and its last error (a
receiver that fails is retried with backoff). --json adds lost events (pruned past
--event-retention before delivery).`,
		env:     opEnv,
		example: "tegata streams list\ntegata streams list --json",
	},
	"streams create": {
		usage:   "streams create (--push URL | --poll [--poll-key ID]) [flags]",
		summary: "create an event stream",
		about: `Creates a stream whose events start with the next revocation. --push sends each event
to an https:// endpoint on a public address (the authority checks every address it
connects to; --ssf-insecure-push on the authority lifts this for development); --poll
gives the receiver an endpoint to poll with the API key --poll-key names (a feed key is
enough; make one with 'tegata apikeys create --role feed'), and with no other: polling
acknowledges, and so deletes, the receiver's events. Without --poll-key, the key running
this command polls.`,
		env:     opEnv,
		example: "tegata streams create --push https://rx.example.com/caep --auth-header 'Bearer s3cret'\ntegata streams create --poll --poll-key 7Hq... --description 'SIEM'",
	},
	"streams delete": {
		usage:   "streams delete ID [flags]",
		summary: "delete an event stream",
		about: `Deletes a stream by id (see 'tegata streams list'): nothing more is sent on it. An ID
that starts with '-' may be given as is, or after --.`,
		env:     opEnv,
		example: "tegata streams delete f67e39a0a4d34d56b3aa1b",
	},
	"version": {
		usage:   "version [flags]",
		summary: "print the version of tegata",
		about:   `Prints the module version and the source revision this binary was built from.`,
		example: "tegata version",
	},
	"help": {
		usage:   "help [COMMAND [SUBCOMMAND]]",
		summary: "help about a command",
		about:   `Prints the help of a command, the same as 'tegata COMMAND -h'.`,
		example: "tegata help revoke\ntegata help keys rotate",
	},
}

// printGeneral prints the list of commands.
func printGeneral(w io.Writer) {
	fmt.Fprint(w, "tegata: sessions and access tokens verified locally, revoked instantly.\n\nUsage:\n  tegata COMMAND [flags]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, name := range order {
		fmt.Fprintf(tw, "  %s\t%s\n", name, docs[name].summary)
	}
	tw.Flush()
	fmt.Fprintf(w, `
Operator commands (%s) call a running
authority: --authority URL (env TEGATA_AUTHORITY, default http://127.0.0.1:8080) with the
admin API key from TEGATA_API_KEY or --key-file (default $TEGATA_DATA/api-key).
Flags and arguments may come in any order. Run 'tegata help COMMAND' for a command's help.
`, strings.Join(operatorCommands(), ", "))
}

// operatorCommands are the commands that call a running authority: all but
// the ones that run something themselves or print.
func operatorCommands() []string {
	var out []string
	for _, name := range order {
		switch name {
		case "serve", "gate", "relay", "version", "help":
		default:
			out = append(out, name)
		}
	}
	return out
}

// printHelp prints the help of the command name: usage, what it does, its
// subcommands or its flags (fs; nil for a command made of subcommands), the
// environment it reads, an example.
func printHelp(w io.Writer, name string, fs *flag.FlagSet) {
	d := docs[name]
	fmt.Fprintf(w, "Usage: tegata %s\n\n%s\n", d.usage, d.about)
	if len(d.subs) > 0 {
		fmt.Fprint(w, "\nSubcommands:\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range d.subs {
			fmt.Fprintf(tw, "  %s %s\t%s\n", name, s, docs[name+" "+s].summary)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nRun 'tegata %s SUBCOMMAND -h' for a subcommand's flags.\n", name)
	}
	if fs != nil {
		printFlags(w, name, fs)
	}
	if env := envLines(name, d.env, fs); len(env) > 0 {
		fmt.Fprint(w, "\nEnvironment:\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, e := range env {
			fmt.Fprintf(tw, "  %s\n", e)
		}
		tw.Flush()
		if _, ok := envNames[name]; ok {
			fmt.Fprint(w, "  A flag given on the command line wins over its variable. A key or the --db URL may instead\n"+
				"  be read from a file: NAME_FILE names it, for the key or URL variable NAME.\n")
		}
	}
	if d.example != "" {
		fmt.Fprint(w, "\nExample:\n")
		for _, l := range strings.Split(d.example, "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

// envLines is the Environment section of command name: the documented
// variables, then the one of every flag (envFor) not among them.
func envLines(name string, documented []string, fs *flag.FlagSet) []string {
	out := append([]string(nil), documented...)
	if fs == nil {
		return out
	}
	fs.VisitAll(func(f *flag.Flag) {
		v := envFor(name, f.Name)
		if v == "" {
			return
		}
		for _, e := range documented {
			if strings.HasPrefix(e, v+"\t") {
				return
			}
		}
		out = append(out, v+"\t--"+f.Name)
	})
	return out
}

// printFlags lists fs's flags as --name TYPE, then the usage, the default
// and the variable that sets it.
func printFlags(w io.Writer, name string, fs *flag.FlagSet) {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(w, "\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		fmt.Fprintf(w, "%s\n        %s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		if v := envFor(name, f.Name); v != "" {
			fmt.Fprintf(w, " (env %s)", v)
		}
		fmt.Fprintln(w)
	})
}
