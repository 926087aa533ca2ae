package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// report collects every result and writes them as markdown.
type report struct {
	settings
	revision              string
	onebox                string // the onebox's layout as it reported it
	started, finished     time.Time
	loadBefore, loadAfter string
	results               []result
	profiles              []profile
}

func (r *report) find(store, phase string) (result, bool) {
	for _, x := range r.results {
		if x.store == store && x.phase == phase {
			return x, true
		}
	}
	return result{}, false
}

// write writes the markdown file into dir and returns its path.
func (r *report) write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "ycsb-"+r.started.Format("2006-01-02")+".md")
	return path, os.WriteFile(path, []byte(r.markdown()), 0o644)
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# YCSB: gopegasus onebox, Redis, etcd\n\n")
	p("Run on %s, %s to %s (UTC). Machine: %d cores (%s), %s. Load average (1, 5, 15 min): %s before, %s after.\n",
		r.started.UTC().Format("2006-01-02"), r.started.UTC().Format("15:04"), r.finished.UTC().Format("15:04"),
		runtime.NumCPU(), cpuModel(), kernel(), r.loadBefore, r.loadAfter)
	p("Client and servers share the machine's cores; the load average before the run shows what else was running.\n\n")
	p("Settings: go-ycsb v1.0.1 core workloads, %d records of one %d-byte field, %d client threads, %s request distribution, "+
		"%s per workload after a load phase; every store started fresh, on loopback.\n\n",
		r.records, r.fieldLength, r.threads, r.dist, r.duration)
	p("- gopegasus onebox (revision %s): `pegasus onebox` with its defaults, meta and replica servers in one process (%s; "+
		"every replica of a partition is a raft voter, and writes are acknowledged once a quorum fsynced them); "+
		"our go-ycsb binding on our Go client.\n", orUnknown(r.revision), orUnknown(r.onebox))
	p("- gopegasus onebox, go-ycsb's pegasus binding: the same onebox started afresh, with go-ycsb v1.0.1's own pegasus binding " +
		"on the official go-client of 2018 it uses (a record is one JSON value under the empty sort key; the binding's Update is " +
		"fixed to pass that sort key instead of nil, see bench/README.md).\n")
	p("- Redis %s: `appendonly yes`, `appendfsync everysec`, no RDB snapshots, no replica; go-ycsb's redis binding (hash records).\n", version("redis-server", "--version"))
	p("- etcd %s: one member, and three members on this machine; go-ycsb's etcd binding.\n\n", version("etcd", "--version"))
	p("Server CPU is the user+system time of the store's server processes (`/proc/<pid>/stat`) over the phase, divided by its successful operations. " +
		"A workload stops when its time is up (its context is cancelled), so the operations in flight then fail: they are most of the errors below (at most one per client thread).\n\n")

	p("| store | workload | ops/s | avg µs | p99 µs | p999 µs | server CPU µs/op | errors |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range r.results {
		t := x.total()
		p("| %s | %s | %.0f | %.0f | %.0f | %.0f | %.1f | %d |\n", x.store, x.phase, t.opsPerSec, t.avgUS, t.p99US, t.p999US, x.cpuPerOpUS(), x.errors())
	}
	p("\nPer operation:\n\n| store | workload | op | count | ops/s | avg µs | p50 µs | p99 µs | p999 µs | max µs |\n")
	p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range r.results {
		ops := make([]string, 0, len(x.ops))
		for op := range x.ops {
			if op != "TOTAL" {
				ops = append(ops, op)
			}
		}
		sort.Strings(ops)
		for _, op := range ops {
			o := x.ops[op]
			p("| %s | %s | %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", x.store, x.phase, op, o.count, o.opsPerSec, o.avgUS, o.p50US, o.p99US, o.p999US, o.maxUS)
		}
	}
	p("\n## Targets (onebox against Redis AOF everysec)\n\n")
	for _, t := range r.targets() {
		p("- %s\n", t)
	}
	if len(r.profiles) > 0 {
		p("\n## Where the onebox spends its CPU\n\n")
		p("CPU profiles of the onebox process (runtime/pprof through `bench/oneboxprof`), in separate %s runs after the measured ones.\n", r.profileDuration())
		for _, pr := range r.profiles {
			t := pr.result.total()
			p("\n### Workload %s (%.0f ops/s while profiled)\n\n```\n%s\n```\n", pr.workload, t.opsPerSec, pr.top)
		}
	}
	return b.String()
}

func (r *report) profileDuration() string {
	if len(r.profiles) == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f s", r.profiles[0].result.seconds)
}

// targets checks the goals set for the onebox against Redis and etcd: the write path's
// (YCSB-A and the load phase, with durability always and os) and the reads'.
func (r *report) targets() []string {
	const ob, ou, rd, e3 = "gopegasus onebox", "gopegasus onebox, durability os (unsafe)", "Redis (AOF everysec)", "etcd (3 members)"
	var out []string
	check := func(ok bool, format string, a ...any) {
		mark := "missed"
		if ok {
			mark = "met"
		}
		out = append(out, fmt.Sprintf("**%s**: %s", mark, fmt.Sprintf(format, a...)))
	}
	// ratio checks store's ops/s in phase against at least min times other's.
	ratio := func(store, other, phase string, min float64, what string) {
		o, ok1 := r.find(store, phase)
		x, ok2 := r.find(other, phase)
		if ok1 && ok2 {
			a, b := o.total().opsPerSec, x.total().opsPerSec
			check(a >= min*b, "%s ≥ %.2f× %s: %.0f vs %.0f ops/s (%.2f×)", what, min, other, a, b, a/b)
		}
	}
	ratio(ob, rd, "workload A", 0.35, "A throughput, durability always,")
	ratio(ou, rd, "workload A", 0.7, "A throughput, durability os,")
	ratio(ob, e3, "workload A", 10, "A throughput")
	ratio(ob, rd, "load", 0.25, "load throughput")
	ratio(ou, rd, "load", 0.25, "load throughput, durability os,")
	for _, store := range []string{ob, ou} {
		o, ok1 := r.find(store, "workload A")
		x, ok2 := r.find(rd, "workload A")
		if ok1 && ok2 {
			a, b := o.ops["UPDATE"].p99US, x.ops["UPDATE"].p99US
			check(a <= 4*b, "%s: A update p99 ≤ 4× Redis's: %.0f vs %.0f µs (%.1f×)", store, a, b, a/b)
		}
		if l, ok := r.find(store, "load"); ok {
			check(l.cpuPerOpUS() <= 100, "%s: server CPU per insert in the load phase ≤ 100 µs: %.1f µs", store, l.cpuPerOpUS())
		}
	}
	ratio(ob, rd, "workload C", 1, "C throughput")
	oc, ok1 := r.find(ob, "workload C")
	rc, ok2 := r.find(rd, "workload C")
	if ok1 && ok2 {
		check(oc.cpuPerOpUS() <= 2*rc.cpuPerOpUS(), "C server CPU/op ≤ 2× Redis: %.1f vs %.1f µs/op (%.1f×)",
			oc.cpuPerOpUS(), rc.cpuPerOpUS(), oc.cpuPerOpUS()/rc.cpuPerOpUS())
		check(oc.total().p99US <= 2*rc.total().p99US, "workload C p99 ≤ 2× Redis: %.0f vs %.0f µs", oc.total().p99US, rc.total().p99US)
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "Linux"
	}
	return "Linux " + strings.TrimSpace(string(b))
}

// version returns the version a server program reports: redis-server says
// "Redis server v=7.0.15 sha=...", etcd "etcd Version: 3.4.23" on its first line.
func version(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return "(version unknown)"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if _, v, ok := strings.Cut(line, "Version: "); ok {
		return strings.TrimSpace(v)
	}
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return strings.TrimSpace(line)
}
