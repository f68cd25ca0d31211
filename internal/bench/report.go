package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
)

// Report is the outcome of one system benchmark: what it was told, what it
// measured, how that compares with the project's targets, and any failure
// of correctness (a revocation that never arrived), which makes the
// command exit non-zero. A missed target is not a failure.
type Report struct {
	Benchmark string   `json:"benchmark"`
	Params    []Param  `json:"params"`
	Results   []Result `json:"results"`
	Targets   []Target `json:"targets"`
	CPU       []CPUUse `json:"cpu,omitempty"`
	Notes     []string `json:"notes,omitempty"`
	Failures  []string `json:"failures,omitempty"`
	Seconds   float64  `json:"elapsed_s"`
}

// Param is one setting the benchmark ran with.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Result is one measured figure.
type Result struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// Target is a goal and whether this run met it: Value compared by Op
// ("<", "<=" or ">=") with Limit. ID names the goal stably for
// scripts/bench.sh, whatever the wording of Name.
type Target struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Goal     string  `json:"goal"`
	Measured string  `json:"measured"`
	Value    float64 `json:"value"`
	Op       string  `json:"op"`
	Limit    float64 `json:"limit"`
	Pass     bool    `json:"pass"`
}

// NewTarget compares value with limit. unit is appended to both figures
// in Goal and, when measured is empty, in Measured.
func NewTarget(id, name string, value float64, op string, limit float64, unit, measured string) Target {
	if measured == "" {
		measured = FormatValue(value) + unit
	}
	pass := false
	switch op {
	case "<":
		pass = value < limit
	case "<=":
		pass = value <= limit
	case ">=":
		pass = value >= limit
	}
	return Target{ID: id, Name: name, Goal: op + " " + FormatValue(limit) + unit, Measured: measured,
		Value: value, Op: op, Limit: limit, Pass: pass}
}

// Gap says by how much a missed target was missed.
func (t Target) Gap() string {
	switch {
	case t.Pass:
		return ""
	case t.Op == ">=" && t.Value > 0:
		return fmt.Sprintf("%.0f%% short (%.2f× below the goal)", 100*(1-t.Value/t.Limit), t.Limit/t.Value)
	case t.Limit > 0 && t.Value >= 2*t.Limit:
		return fmt.Sprintf("%.1f× the limit", t.Value/t.Limit)
	case t.Limit > 0:
		return fmt.Sprintf("%.2f× the limit (%.0f%% over)", t.Value/t.Limit, 100*(t.Value/t.Limit-1))
	}
	return "not measured"
}

func (r *Report) param(name string, v any) {
	r.Params = append(r.Params, Param{name, fmt.Sprint(v)})
}

func (r *Report) result(name string, v float64, unit string) {
	r.Results = append(r.Results, Result{name, v, unit})
}

// latency adds the percentiles of s as results named prefix p50 etc.
func (r *Report) latency(prefix string, s Summary) {
	r.result(prefix+" p50", s.P50, "ms")
	r.result(prefix+" p90", s.P90, "ms")
	r.result(prefix+" p99", s.P99, "ms")
	r.result(prefix+" max", s.Max, "ms")
}

func (r *Report) target(id, name string, value float64, op string, limit float64, unit, measured string) {
	r.Targets = append(r.Targets, NewTarget(id, name, value, op, limit, unit, measured))
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *Report) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// Failed reports whether the run found a correctness failure.
func (r *Report) Failed() bool { return len(r.Failures) > 0 }

// WriteText prints the report as aligned tables for a terminal.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "tegata-bench %s (%.0f s)\n", r.Benchmark, r.Seconds)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range r.Params {
		fmt.Fprintf(tw, "  %s\t%s\n", p.Name, p.Value)
	}
	fmt.Fprintln(tw, "\n  RESULT\tVALUE")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "  %s\t%s %s\n", res.Name, FormatValue(res.Value), res.Unit)
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(tw, "\n  TARGET\tGOAL\tMEASURED\tVERDICT")
		for _, t := range r.Targets {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.Name, t.Goal, t.Measured, Verdict(t.Pass))
		}
	}
	tw.Flush()
	for _, u := range r.CPU {
		fmt.Fprintf(w, "cpu, %s: %s\n", u.Phase, u)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAILURE: %s\n", f)
	}
}

// Verdict is how a target's outcome is printed.
func Verdict(pass bool) string {
	if pass {
		return "pass"
	}
	return "MISS"
}

// FormatValue prints a figure with about three significant digits, and
// whole numbers without decimals.
func FormatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatInt(int64(v), 10)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
