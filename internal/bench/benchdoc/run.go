package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/bench"
)

// systems are the system benchmarks, in the order the document shows them.
var systems = []string{"propagation", "flood", "authority", "gate"}

// run is everything one run of scripts/bench.sh left in its directory.
type run struct {
	dir      string
	micro    micro
	microRan bool
	reports  map[string]*bench.Report // nil entry: no usable JSON
	status   map[string]string        // exit status of each system benchmark
	commands []string
	elapsed  time.Duration
}

func load(dir string) *run {
	r := &run{dir: dir, reports: map[string]*bench.Report{}, status: map[string]string{}}
	if f, err := os.Open(filepath.Join(dir, "micro.txt")); err == nil {
		r.micro = parseMicro(f)
		r.microRan = len(r.micro.order) > 0
		f.Close()
	}
	for _, name := range systems {
		r.status[name] = r.text(name + ".status")
		var rep bench.Report
		if b, err := os.ReadFile(filepath.Join(dir, name+".json")); err == nil && json.Unmarshal(b, &rep) == nil && rep.Benchmark != "" {
			r.reports[name] = &rep
		}
	}
	for _, line := range strings.Split(r.text("commands.txt"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			r.commands = append(r.commands, line)
		}
	}
	return r
}

// text returns a file of the run's directory, trimmed, or "".
func (r *run) text(name string) string {
	b, err := os.ReadFile(filepath.Join(r.dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// row is one line of the targets table.
type row struct {
	bench.Target
	source   string // the benchmark that measured it
	measured bool   // false: the benchmark did not run or lacked a figure
}

// targets returns every target of the run: micro benchmarks first, then
// the system benchmarks'.
func (r *run) targets() []row {
	var rows []row
	for _, t := range microTargets {
		rows = append(rows, t.eval(r.micro))
	}
	for _, name := range systems {
		rep := r.reports[name]
		if rep == nil {
			continue
		}
		for _, t := range rep.Targets {
			rows = append(rows, row{Target: t, source: "tegata-bench " + name, measured: true})
		}
	}
	return rows
}

// command returns the command line the script ran that contains s.
func (r *run) command(s string) string {
	for _, c := range r.commands {
		if strings.Contains(c, s) {
			return c
		}
	}
	return ""
}
