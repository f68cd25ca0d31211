package cli

import (
	"flag"
	"os"
	"strings"
)

// secretVars are the variables that carry a secret: each may instead name a
// file holding it, as NAME_FILE (a mounted Kubernetes or Docker secret,
// systemd's LoadCredential), so the secret stays out of the process
// environment and of `ps e`.
var secretVars = []string{"TEGATA_MASTER_KEY", "TEGATA_MASTER_KEY_OTHER", "TEGATA_API_KEY", "TEGATA_FEED_KEY", "TEGATA_GATE_KEY", "TEGATA_DB"}

// withSecretFiles returns env with every NAME_FILE of secretVars read into
// NAME: one trailing newline is dropped, as files are written with one.
// Setting both NAME and NAME_FILE, or naming a file that cannot be read, is
// an error naming the variable.
func withSecretFiles(env Env) (Env, error) {
	vals := map[string]string{}
	for _, name := range secretVars {
		path := env.Getenv(name + "_FILE")
		if path == "" {
			continue
		}
		if env.Getenv(name) != "" {
			return env, usageErr("both %s and %s_FILE are set; set one", name, name)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return env, usageErr("%s_FILE: %v", name, err)
		}
		vals[name] = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	if len(vals) == 0 {
		return env, nil
	}
	get, lookup := env.Getenv, env.LookupEnv
	env.Getenv = func(name string) string {
		if v, ok := vals[name]; ok {
			return v
		}
		return get(name)
	}
	env.LookupEnv = func(name string) (string, bool) {
		if v, ok := vals[name]; ok {
			return v, true
		}
		if lookup == nil {
			v := get(name)
			return v, v != ""
		}
		return lookup(name)
	}
	return env, nil
}

// envNames gives, per command, the prefix of the variables that set its
// flags (TEGATA_ + the flag's name in capitals, '-' as '_'), and the flags
// whose variable is named otherwise: one mechanism for every flag of the
// long-running commands. The gate's variables carry GATE_ so that one
// environment can hold an authority's and a gate's settings.
// The flags that act once rather than configure (a new epoch, replacing
// keys, taking the node's settings as the cluster's, a restore) have
// none: left in a unit file, a variable would act again at every restart.
var envNames = map[string]struct {
	prefix string
	except map[string]string
}{
	"serve": {prefix: "TEGATA_", except: map[string]string{"new-epoch": "", "replace-keys": "", "update-settings": "", "restored": ""}},
	"gate":  {prefix: "TEGATA_GATE_", except: map[string]string{"authority": "TEGATA_AUTHORITY"}},
	"relay": {prefix: "TEGATA_RELAY_"},
}

// envFor returns the variable that sets flag of command cmd, or "".
func envFor(cmd, flag string) string {
	n, ok := envNames[cmd]
	if !ok {
		return ""
	}
	if v, ok := n.except[flag]; ok {
		return v
	}
	return n.prefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag whose variable is set and not empty, as its
// default would be: the command line, parsed after, wins, and flag.Visit
// still visits only flags given on the command line. A bad value is an
// error naming the variable (never echoing it: it may be a URL with a
// password).
func (fs *flagSet) applyEnv() error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		name := envFor(fs.name, f.Name)
		if name == "" || err != nil {
			return
		}
		if v := fs.env.Getenv(name); v != "" {
			if serr := f.Value.Set(v); serr != nil {
				kind, _ := flag.UnquoteUsage(f)
				if kind == "" {
					kind = "boolean (true or false)"
				}
				err = usageErr("%s (for --%s) is not a valid %s: %v", name, f.Name, kind, serr)
			}
		}
	})
	return err
}
