package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tegata-dev/tegata/internal/bench/history"
)

// settle waits, once every fault has ended, until every verifier and gate
// is current and holds every revocation the log holds.
func (cr *chaosRun) settle(ctx context.Context) error {
	head, err := cr.logHead(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		behind := cr.behind(ctx, head)
		if len(behind) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: 2 minutes after the faults ended, %d verifiers or gates are not current at position %d: %s",
				len(behind), head, strings.Join(behind[:min(5, len(behind))], ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// behind names the verifiers and gates not current at head.
func (cr *chaosRun) behind(ctx context.Context, head int64) []string {
	var out []string
	for _, s := range cr.vs {
		v := s.v.Load()
		if v == nil {
			out = append(out, s.name+" (not running)")
			continue
		}
		if st := v.State(); !st.Ready || st.Position < head {
			out = append(out, fmt.Sprintf("%s (ready %v, position %d)", s.name, st.Ready, st.Position))
		}
	}
	for i, g := range cr.cc.gateURL {
		if pos, err := gatePosition(ctx, cr.cc.hc, g); err != nil || pos < head {
			out = append(out, fmt.Sprintf("gate%d (position %d, %v)", i, pos, err))
		}
	}
	return out
}

// finals records where every verifier and gate settled, and asks each
// about the latest revoked tokens and a few others.
func (cr *chaosRun) finals(ctx context.Context) {
	var toks []tokenInfo
	cr.load.mu.Lock()
	toks = append(toks, cr.load.revoked[max(0, len(cr.load.revoked)-40):]...)
	toks = append(toks, cr.load.tokens[max(0, len(cr.load.tokens)-10):]...)
	cr.load.mu.Unlock()
	for _, s := range cr.vs {
		if v := s.v.Load(); v != nil {
			cr.h.Add(history.Event{P: s.name, Kind: history.KindFinal, Pos: v.State().Position})
			for _, t := range toks {
				cr.verify(ctx, s, t, true, "", 0)
			}
		}
	}
	for g, u := range cr.cc.gateURL {
		if pos, err := gatePosition(ctx, cr.cc.hc, u); err == nil {
			cr.h.Add(history.Event{P: cr.cc.gates[g].name, Kind: history.KindFinal, Pos: pos})
		}
		for _, t := range toks {
			cr.gateVerify(ctx, g, t, true, "", 0)
		}
	}
}

func (cr *chaosRun) logHead(ctx context.Context) (int64, error) {
	conn, err := pgx.Connect(ctx, cr.cc.schema.dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var head int64
	err = conn.QueryRow(ctx, `SELECT seq FROM log_head`).Scan(&head)
	return head, err
}

// audit writes what the store holds at the end: every log entry and every
// session.
func (cr *chaosRun) audit(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, cr.cc.schema.dsn)
	if err != nil {
		return fmt.Errorf("chaos: reading the store: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT seq, kind, session_id, subject, generation FROM revocations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var e history.Event
		var kind, sid, sub string
		if err := rows.Scan(&e.Seq, &kind, &sid, &sub, &e.SGen); err != nil {
			return err
		}
		e.P, e.Kind = "audit", history.KindLogged
		if kind == "session" {
			e.SID, e.SGen = sid, 0
		} else {
			e.Sub = sub
		}
		cr.h.Add(e)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	sids, err := conn.Query(ctx, `SELECT id FROM sessions`)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(sids, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, id := range ids {
		cr.h.Add(history.Event{P: "audit", Kind: history.KindStored, SID: id})
	}
	cr.h.Add(history.Event{P: "audit", Kind: history.KindAudited})
	return nil
}

// usage is one process's resident memory and goroutines.
type usage struct {
	rssKiB     float64
	goroutines float64
	n          int // processes summed
}

// resources measures every process of the run: the nodes, the gates and
// this one (which holds the verifiers). The goroutines of the nodes and
// gates are counted without the harness's idle connections to them
// (processGoroutines); the count with them is logged beside it.
func (cr *chaosRun) resources(ctx context.Context) map[string]usage {
	out := map[string]usage{}
	var ms []*member
	var ps []*process
	var urls []string
	for _, m := range append(append([]*member(nil), cr.cc.members...), cr.cc.gates...) {
		if p := m.proc(); p != nil && !p.exited() {
			ms, ps, urls = append(ms, m), append(ps, p), append(urls, m.url)
		}
	}
	rss := make([]float64, len(ps))
	for i, p := range ps {
		rss[i] = procRSS(strconv.Itoa(p.cmd.Process.Pid))
	}
	settled, raw := processGoroutines(ctx, cr.cc.hc, urls)
	var line []string
	for i, m := range ms {
		g := settled[i]
		if ps[i].exited() || m.proc() != ps[i] {
			g = -1 // killed while measured: its successor answered
		}
		out[m.name] = usage{rssKiB: rss[i], goroutines: g}
		line = append(line, fmt.Sprintf("%s %.0f (%.0f)", m.name, g, raw[i]))
	}
	cr.cfg.logf("chaos: goroutines without (with) the harness's idle connections: %s", strings.Join(line, ", "))
	debug.FreeOSMemory()
	out["harness (verifiers)"] = usage{rssKiB: procRSS(strconv.Itoa(os.Getpid())), goroutines: float64(runtime.NumGoroutine())}
	return out
}

// processGoroutines reads go_goroutines from each base URL's /metrics,
// once as it is (raw) and once without hc's idle connections (settled).
//
// hc keeps up to 256 idle keep-alive connections to each process, and a Go
// server holds a goroutine for each until its idle timeout (2 minutes for
// tegata's). After a burst of probes (a gate restarted while hundreds of
// revoked tokens were being followed to it) that is hundreds of goroutines
// for 2 minutes that are the harness's, not the process's. So hc's idle
// connections are closed, and each process is read again until its count
// has stopped falling (the server ends a connection's goroutine once it
// reads the close): 3 reads 100 ms apart without a fall, at most 30 reads.
// -1 is a process that did not answer.
func processGoroutines(ctx context.Context, hc *http.Client, urls []string) (settled, raw []float64) {
	raw = make([]float64, len(urls))
	for i, u := range urls {
		raw[i] = readGoroutines(ctx, hc, u)
	}
	hc.CloseIdleConnections()
	settled = make([]float64, len(urls))
	for i := range settled {
		settled[i] = -1
	}
	for i, u := range urls {
		n := readGoroutines(ctx, hc, u)
		for reads, flat := 1, 0; n >= 0 && flat < 3 && reads < 30; reads++ {
			select {
			case <-ctx.Done():
				settled[i] = n
				return settled, raw
			case <-time.After(100 * time.Millisecond):
			}
			m := readGoroutines(ctx, hc, u)
			switch {
			case m < 0:
				flat = 3
			case m < n:
				n, flat = m, 0
			default:
				flat++
			}
		}
		settled[i] = n
	}
	return settled, raw
}

// readGoroutines reads go_goroutines from a process's /metrics.
func readGoroutines(ctx context.Context, hc *http.Client, base string) float64 {
	body, err := getBody(ctx, hc, base+"/metrics")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return n
		}
	}
	return -1
}

// Growth bounds: what the processes of one kind (the nodes, the gates, the
// harness with its verifiers) may hold together at the end of a run,
// against what they held a quarter into it. Together, because verifiers
// fail over: a node's followers move to another while it is down.
const (
	rssGrowthFactor = 1.5
	rssGrowthKiB    = 64 << 10
	goroutineFactor = 1.5
	goroutineGrowth = 200
	minBoundedRun   = 2 * time.Minute
)

func (cr *chaosRun) reportResources(r *Report, before, warm, after map[string]usage) {
	r.note("resource bound: at the end the nodes together, the gates together and the harness each hold at most %.1f× the resident memory they held a quarter into the run + %d MiB, and %.1f× the goroutines + %d",
		rssGrowthFactor, rssGrowthKiB>>10, goroutineFactor, goroutineGrowth)
	for _, name := range sortedUsage(before) {
		b, w, a := before[name], warm[name], after[name]
		r.result(name+": RSS at end", a.rssKiB/1024, fmt.Sprintf("MiB (start %.1f, quarter %.1f)", b.rssKiB/1024, w.rssKiB/1024))
		r.result(name+": goroutines at end", a.goroutines, fmt.Sprintf("(start %.0f, quarter %.0f)", b.goroutines, w.goroutines))
	}
	if warm == nil || cr.cfg.Duration < minBoundedRun {
		r.note("resource bound not checked: runs shorter than %s are mostly warm-up", minBoundedRun)
		return
	}
	for _, group := range []string{"node", "gate", "harness"} {
		w, a := groupUsage(warm, group), groupUsage(after, group)
		if w.n != a.n || w.goroutines < 0 || a.goroutines < 0 {
			r.note("%s: resource bound not checked: a process was down or paused when measured", group)
			continue
		}
		if a.rssKiB > rssGrowthFactor*w.rssKiB+rssGrowthKiB {
			r.fail("%s: resident memory grew from %.1f to %.1f MiB", group, w.rssKiB/1024, a.rssKiB/1024)
		}
		if w.goroutines >= 0 && a.goroutines > goroutineFactor*w.goroutines+goroutineGrowth {
			r.fail("%s: goroutines grew from %.0f to %.0f", group, w.goroutines, a.goroutines)
		}
	}
}

// groupUsage sums the usage of the processes whose name starts with
// prefix; goroutines are -1 when any is unknown.
func groupUsage(m map[string]usage, prefix string) usage {
	var u usage
	for name, x := range m {
		if strings.HasPrefix(name, prefix) {
			u.n++
			u.rssKiB += x.rssKiB
			if x.goroutines < 0 || u.goroutines < 0 {
				u.goroutines = -1
			} else {
				u.goroutines += x.goroutines
			}
		}
	}
	return u
}

func sortedUsage(m map[string]usage) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func getBody(ctx context.Context, hc *http.Client, url string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, "GET", url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return string(b), err
}
