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
	finds map[string]func() []int
	seen  map[string]map[int]bool // pids a find listed at some sample
	order []string
}

func newCPUGroups() *cpuGroups {
	return &cpuGroups{pids: map[string][]int{}, names: map[string]string{}, finds: map[string]func() []int{},
		seen: map[string]map[int]bool{}}
}

func (g *cpuGroups) known(group string) bool {
	_, pids := g.pids[group]
	_, find := g.finds[group]
	return pids || find || g.names[group] != ""
}

func (g *cpuGroups) add(group string, pids ...int) {
	if !g.known(group) {
		g.order = append(g.order, group)
	}
	g.pids[group] = append(g.pids[group], pids...)
}

// addName accounts for every process whose command name is comm.
func (g *cpuGroups) addName(group, comm string) {
	if !g.known(group) {
		g.order = append(g.order, group)
	}
	g.names[group] = comm
}

// addFind accounts for the processes find lists at each sample (the
// Postgres backends serving this run, not those of other users of the
// server). A process that exits between two samples takes its time with it.
func (g *cpuGroups) addFind(group string, find func() []int) {
	if !g.known(group) {
		g.order = append(g.order, group)
	}
	g.finds[group] = find
}

// cpuSample is the CPU time (user + system) of each group at one instant,
// and of the whole machine.
type cpuSample struct {
	at   time.Time
	sec  map[string]float64
	each map[string]map[int]float64 // groups found by addFind: CPU by pid
	machine
}

// machine is the machine's CPU time by kind, summed over cores, in seconds.
type machine struct {
	tasks float64 // user and system time of all processes
	intr  float64 // hard and soft interrupts: mostly the network stack, loopback included
	steal float64 // taken by the hypervisor
	idle  float64 // idle and waiting for I/O
}

// sample reads the groups' CPU times from /proc. Where /proc is missing
// (not Linux) it reads nothing and the report says so.
func (g *cpuGroups) sample() cpuSample {
	s := cpuSample{at: time.Now(), sec: map[string]float64{}, each: map[string]map[int]float64{}}
	s.machine = machineCPU()
	for group, find := range g.finds {
		// Processes listed before count as long as they run, so that a
		// listing that misses some (or fails) loses none of their time.
		if g.seen[group] == nil {
			g.seen[group] = map[int]bool{}
		}
		for _, pid := range find() {
			g.seen[group][pid] = true
		}
		m := map[int]float64{}
		for pid := range g.seen[group] {
			f := statFields(strconv.Itoa(pid))
			m[pid] = statSeconds(f, 11, 12)
			// A process that exits takes its time out of /proc, into its
			// parent's count of reaped children: for Postgres backends,
			// the postmaster's. Keyed by the parent's negated pid, that
			// count keeps a backend that ended during a phase (a pool
			// replacing a connection) from leaving the group's time.
			if len(f) < 2 {
				continue
			}
			if ppid, _ := strconv.Atoi(f[1]); ppid > 1 && !g.seen[group][ppid] {
				if _, done := m[-ppid]; !done {
					m[-ppid] = statSeconds(statFields(f[1]), 13, 14)
				}
			}
		}
		s.each[group] = m
	}
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
	return statSeconds(statFields(pid), 11, 12)
}

// procMinorFaults returns the minor page faults process pid has taken
// (minflt, field 10 of /proc/<pid>/stat), 0 if unknown. On a virtual
// machine whose host backs a guest page on its first use, a fault on
// fresh memory costs tens of microseconds: the memory a phase touches
// afresh can cost more than its instructions.
func procMinorFaults(pid string) float64 {
	f := statFields(pid)
	if len(f) <= 7 {
		return 0
	}
	n, _ := strconv.ParseFloat(f[7], 64)
	return n
}

// statSeconds sums two clock-tick fields of /proc/<pid>/stat, as
// statFields returns them (numbered from the state field), in seconds; 0
// if they are missing.
func statSeconds(f []string, a, b int) float64 {
	if len(f) <= max(a, b) {
		return 0
	}
	x, _ := strconv.ParseFloat(f[a], 64)
	y, _ := strconv.ParseFloat(f[b], 64)
	return (x + y) / clockTicks
}

// statFields returns the fields of /proc/<pid>/stat after the command
// name (which may hold spaces), nil if unknown.
func statFields(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// machineCPU reads the first line of /proc/stat. Interrupt time is
// charged there and not to the process that was interrupted, so it is kept
// apart: on loopback benchmarks it is the network stack's share.
func machineCPU() machine {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machine{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machine{}
	}
	v := make([]float64, 8) // user nice system idle iowait irq softirq steal
	for i := range v {
		v[i], _ = strconv.ParseFloat(f[i+1], 64)
		v[i] /= clockTicks
	}
	return machine{tasks: v[0] + v[1] + v[2], intr: v[5] + v[6], steal: v[7], idle: v[3] + v[4]}
}

// CPUUse is where the machine's CPU went during one phase of a benchmark,
// in core-seconds: the benchmark's process groups, then "other processes"
// (outside the benchmark: a disturbed run shows here), "interrupts"
// (the kernel's network stack, loopback included), "stolen by the
// hypervisor" and "idle".
type CPUUse struct {
	Phase  string     `json:"phase"`
	Wall   float64    `json:"wall_s"`
	Cores  int        `json:"cores"`
	Groups []CPUGroup `json:"groups"`
}

// CPUGroup is the CPU time of one group of processes.
type CPUGroup struct {
	Name        string  `json:"name"`
	CoreSeconds float64 `json:"core_s"`
}

// Group names CPUUse adds beside the benchmark's own.
const (
	CPUOther      = "other processes"
	CPUInterrupts = "interrupts (network stack)"
	CPUSteal      = "stolen by the hypervisor"
	CPUIdle       = "idle"
)

// Available is the core-seconds the machine had during the phase.
func (u CPUUse) Available() float64 { return u.Wall * float64(u.Cores) }

// Get returns the core-seconds of the named group (0 if absent).
func (u CPUUse) Get(name string) float64 {
	for _, g := range u.Groups {
		if g.Name == name {
			return g.CoreSeconds
		}
	}
	return 0
}

func (u CPUUse) String() string {
	if len(u.Groups) == 0 {
		return "not measured (no /proc)"
	}
	parts := make([]string, len(u.Groups))
	for i, g := range u.Groups {
		parts[i] = fmt.Sprintf("%s %.2f", g.Name, g.CoreSeconds)
	}
	return fmt.Sprintf("%s core-s of %.2f (%d cores × %.2f s)", strings.Join(parts, ", "), u.Available(), u.Cores, u.Wall)
}

// use says where CPU went between two samples.
func (g *cpuGroups) use(phase string, from, to cpuSample) CPUUse {
	u := CPUUse{Phase: phase, Wall: to.at.Sub(from.at).Seconds(), Cores: numCPU()}
	if to.tasks == 0 {
		return u
	}
	sum := 0.0
	for _, group := range g.order {
		d := to.sec[group] - from.sec[group]
		if m, ok := to.each[group]; ok {
			// By pid, so that a process found only at one end counts for
			// what it used in between (all of its time if it started).
			// A process that exited (reads 0) is counted through its
			// parent's reaped-children time (the negated pid), which holds
			// its whole life: what it had used by the first sample, counted
			// in earlier phases, comes off.
			d = 0
			reaped, parent := 0.0, false
			for pid, sec := range m {
				prev := from.each[group][pid]
				switch {
				case pid < 0:
					parent = true
					d += max(0, sec-prev)
				case sec >= prev:
					d += sec - prev
				default:
					reaped += prev
				}
			}
			if parent {
				d = max(0, d-reaped)
			}
		}
		sum += d
		u.Groups = append(u.Groups, CPUGroup{group, d})
	}
	u.Groups = append(u.Groups, CPUGroup{CPUOther, max(0, to.tasks-from.tasks-sum)},
		CPUGroup{CPUInterrupts, to.intr - from.intr})
	if steal := to.steal - from.steal; steal > 0 {
		u.Groups = append(u.Groups, CPUGroup{CPUSteal, steal})
	}
	u.Groups = append(u.Groups, CPUGroup{CPUIdle, to.idle - from.idle})
	return u
}
