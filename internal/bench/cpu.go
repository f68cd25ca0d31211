package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuGroups names groups of processes whose CPU time a benchmark accounts
// for, to show where the time of a phase went: the benchmark's own process,
// its children by role, and every process of a name (Postgres backends).
type cpuGroups struct {
	pids  map[string][]int // group → pids
	names map[string]string
	order []string
}

func newCPUGroups() *cpuGroups {
	return &cpuGroups{pids: map[string][]int{}, names: map[string]string{}}
}

func (g *cpuGroups) add(group string, pids ...int) {
	if _, ok := g.pids[group]; !ok && g.names[group] == "" {
		g.order = append(g.order, group)
	}
	g.pids[group] = append(g.pids[group], pids...)
}

// addName accounts for every process whose command name is comm.
func (g *cpuGroups) addName(group, comm string) {
	if _, ok := g.pids[group]; !ok && g.names[group] == "" {
		g.order = append(g.order, group)
	}
	g.names[group] = comm
}

// cpuSample is the CPU time (user + system) of each group at one instant.
type cpuSample struct {
	at  time.Time
	sec map[string]float64
}

// sample reads the groups' CPU times from /proc. Where /proc is missing
// (not Linux) it reads nothing and the report says so.
func (g *cpuGroups) sample() cpuSample {
	s := cpuSample{at: time.Now(), sec: map[string]float64{}}
	for group, pids := range g.pids {
		for _, pid := range pids {
			s.sec[group] += procCPU(strconv.Itoa(pid))
		}
	}
	for group, comm := range g.names {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			if b, err := os.ReadFile(filepath.Join(d, "comm")); err == nil && strings.TrimSpace(string(b)) == comm {
				s.sec[group] += procCPU(filepath.Base(d))
			}
		}
	}
	return s
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux platform Go supports.
const clockTicks = 100

// procCPU returns utime + stime of a process in seconds, 0 if unknown.
func procCPU(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields after it are fixed.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / clockTicks
}

// cpuShare describes where CPU went between two samples, in core-seconds per
// group, and the core-seconds the machine had.
func (g *cpuGroups) cpuShare(from, to cpuSample) string {
	if len(to.sec) == 0 {
		return "no /proc: not measured"
	}
	wall := to.at.Sub(from.at).Seconds()
	parts := []string{}
	for _, group := range g.order {
		parts = append(parts, fmt.Sprintf("%s %.2f", group, to.sec[group]-from.sec[group]))
	}
	return fmt.Sprintf("%s core-s of %.2f available (%d cores × %.2f s)",
		strings.Join(parts, ", "), wall*float64(numCPU()), numCPU(), wall)
}
