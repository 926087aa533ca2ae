// Command compare runs the same YCSB workloads, with go-ycsb's harness, against gopegasus's
// onebox, Redis (AOF, fsync every second) and etcd (one member and three members), all on
// this machine, and writes a markdown table of throughput, latency and server CPU time per
// operation. run.sh installs the servers and runs it; see README.md there.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/client"
	"github.com/pingcap/go-ycsb/pkg/measurement"
	"github.com/pingcap/go-ycsb/pkg/ycsb"

	_ "github.com/gopegasus/pegasus/compat/gocli2018/ycsb/pegasus" // go-ycsb's pegasus binding, its Update fixed
	_ "github.com/pingcap/go-ycsb/db/etcd"
	_ "github.com/pingcap/go-ycsb/db/redis"
	_ "github.com/pingcap/go-ycsb/pkg/workload"
)

// settings are the benchmark's parameters, the same for every store.
type settings struct {
	records     int
	fieldLength int
	threads     int
	duration    time.Duration
	workloads   []string
	dist        string
}

// workloadProps are YCSB's core workloads as go-ycsb properties.
var workloadProps = map[string]map[string]string{
	"A": {"readproportion": "0.5", "updateproportion": "0.5"},
	"B": {"readproportion": "0.95", "updateproportion": "0.05"},
	"C": {"readproportion": "1", "updateproportion": "0"},
	"F": {"readproportion": "0.5", "updateproportion": "0", "readmodifywriteproportion": "0.5"},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	pegasusBin := flag.String("pegasus", "", "the pegasus binary built from this repository (required)")
	profBin := flag.String("oneboxprof", "", "the bench/oneboxprof binary; when set, the onebox is profiled in an extra pass")
	stores := flag.String("stores", "onebox,onebox-os,gocli2018,redis,etcd1,etcd3", "stores to benchmark, in order")
	workloads := flag.String("workloads", "A,C", "YCSB core workloads to run (A, B, C, F)")
	records := flag.Int("records", 100000, "records loaded")
	fieldLength := flag.Int("field-length", 1024, "bytes per record (one field)")
	threads := flag.Int("threads", 16, "client threads")
	duration := flag.Duration("duration", 30*time.Second, "duration of each workload")
	profDuration := flag.Duration("profile-duration", 15*time.Second, "duration of each workload in the profiling pass")
	dist := flag.String("distribution", "zipfian", "request distribution: zipfian or uniform")
	work := flag.String("work", "", "directory for the servers' data and logs (default: a new temporary directory)")
	out := flag.String("out", "results", "directory the markdown results are written to")
	revision := flag.String("revision", "", "revision of gopegasus benchmarked, for the results file")
	flag.Parse()
	if *pegasusBin == "" {
		return errors.New("--pegasus is required")
	}
	s := settings{records: *records, fieldLength: *fieldLength, threads: *threads, duration: *duration,
		workloads: strings.Split(*workloads, ","), dist: *dist}
	for _, w := range s.workloads {
		if workloadProps[w] == nil {
			return fmt.Errorf("workload %q: want A, B, C or F", w)
		}
	}
	if *work == "" {
		d, err := os.MkdirTemp("", "ycsb-compare-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*work = d
	}
	rep := &report{settings: s, started: time.Now(), loadBefore: loadAverage(), revision: *revision}
	for _, name := range strings.Split(*stores, ",") {
		st, ok := storeByName(name)
		if !ok {
			return fmt.Errorf("store %q: want onebox, onebox-os, gocli2018, redis, etcd1 or etcd3", name)
		}
		dir := filepath.Join(*work, name)
		results, srvInfo, err := benchStore(ctx, st, *pegasusBin, dir, s)
		rep.results = append(rep.results, results...)
		if err != nil {
			return fmt.Errorf("%s: %w", st.label, err)
		}
		if name == "onebox" {
			rep.onebox = srvInfo.desc
		}
		if name == "onebox" && *profBin != "" {
			ps := s
			ps.duration = *profDuration
			prof, err := profileOnebox(ctx, st, *profBin, dir, srvInfo.ports, ps)
			if err != nil {
				return fmt.Errorf("profiling the onebox: %w", err)
			}
			rep.profiles = prof
		}
	}
	rep.loadAfter = loadAverage()
	rep.finished = time.Now()
	path, err := rep.write(*out)
	if err != nil {
		return err
	}
	fmt.Println("results written to", path)
	return nil
}

// result is one phase (load or a workload) against one store.
type result struct {
	store, phase string
	seconds      float64
	ops          map[string]opResult // by go-ycsb operation name: READ, UPDATE, INSERT, TOTAL, READ_ERROR...
	cpuSeconds   float64             // server processes' user+system CPU during the phase
}

type opResult struct {
	count                   int64
	avgUS, p99US, p999US    float64
	p50US, maxUS, opsPerSec float64
}

func (r result) total() opResult { return r.ops["TOTAL"] }

func (r result) errors() int64 {
	var n int64
	for op, o := range r.ops {
		if strings.HasSuffix(op, "_ERROR") {
			n += o.count
		}
	}
	return n
}

// cpuPerOpUS is the servers' CPU time per successful operation, in microseconds.
func (r result) cpuPerOpUS() float64 {
	if n := r.total().count; n > 0 {
		return r.cpuSeconds * 1e6 / float64(n)
	}
	return 0
}

// benchStore starts a store, loads it and runs every workload, then stops it.
// The servers are returned stopped, for their ports (to restart the onebox on the same
// data) and description.
func benchStore(ctx context.Context, st store, pegasusBin, dir string, s settings) ([]result, *servers, error) {
	fmt.Printf("== %s: starting\n", st.label)
	srv, err := st.start(ctx, pegasusBin, dir)
	if err != nil {
		return nil, nil, err
	}
	defer srv.stop()
	results, err := runPhases(ctx, st, srv, s, true)
	return results, srv, err
}

// runPhases runs the load phase (if load) and then every workload.
func runPhases(ctx context.Context, st store, srv *servers, s settings, load bool) ([]result, error) {
	var results []result
	if load {
		r, err := phase(ctx, st, srv, "load", s)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	for _, w := range s.workloads {
		r, err := phase(ctx, st, srv, w, s)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

// phase runs go-ycsb's client for one phase: "load" inserts every record, a workload name
// runs that workload for the duration.
func phase(ctx context.Context, st store, srv *servers, name string, s settings) (result, error) {
	p := properties.NewProperties()
	set := func(k, v string) { p.Set(k, v) }
	set("workload", "core")
	set("recordcount", strconv.Itoa(s.records))
	set("fieldcount", "1")
	set("fieldlength", strconv.Itoa(s.fieldLength))
	set("readallfields", "true")
	set("requestdistribution", s.dist)
	set("threadcount", strconv.Itoa(s.threads))
	set("measurementtype", "histogram")
	set("outputstyle", "json")
	set("measurement.interval", "10")
	// YCSB_VERBOSE=1 prints every failed operation.
	set("silence", strconv.FormatBool(os.Getenv("YCSB_VERBOSE") == ""))
	out, err := os.CreateTemp("", "ycsb-measure-*.json")
	if err != nil {
		return result{}, err
	}
	out.Close()
	defer os.Remove(out.Name())
	set("measurement.output_file", out.Name())
	load := name == "load"
	if load {
		set("dotransactions", "false")
	} else {
		set("dotransactions", "true")
		// The run ends with the duration; the count only has to be large.
		set("operationcount", strconv.FormatInt(1<<40, 10))
		for k, v := range workloadProps[name] {
			set(k, v)
		}
	}
	for k, v := range srv.props {
		set(k, v)
	}
	measurement.InitMeasure(p)
	wl, err := ycsb.GetWorkloadCreator("core").Create(p)
	if err != nil {
		return result{}, err
	}
	defer wl.Close()
	db, err := ycsb.GetDBCreator(st.binding).Create(p)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	// A workload's time is up when its context is cancelled. It carries no deadline, so no
	// binding sees a deadline pass before go-ycsb's workers see the context done (with one,
	// a binding that derives per-call timeouts from it fails every call it makes in between).
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !load {
		stop := time.AfterFunc(s.duration, cancel)
		defer stop.Stop()
	}
	fmt.Printf("== %s: %s\n", st.label, phaseLabel(name))
	cpu0, err := cpuSeconds(srv.pids())
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	client.NewClient(p, wl, client.DbWrapper{DB: db}).Run(runCtx)
	elapsed := time.Since(start)
	cpu1, err := cpuSeconds(srv.pids())
	if err != nil {
		return result{}, err
	}
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	measurement.Output()
	raw, err := os.ReadFile(out.Name())
	if err != nil {
		return result{}, err
	}
	ops, err := parseMeasurements(raw, elapsed)
	if err != nil {
		return result{}, err
	}
	r := result{store: st.label, phase: phaseLabel(name), seconds: elapsed.Seconds(), ops: ops, cpuSeconds: cpu1 - cpu0}
	t := r.total()
	fmt.Printf("   %.0f ops/s, avg %.0fµs, p99 %.0fµs, p999 %.0fµs, server CPU %.1fµs/op, errors %d\n",
		t.opsPerSec, t.avgUS, t.p99US, t.p999US, r.cpuPerOpUS(), r.errors())
	return r, nil
}

func phaseLabel(name string) string {
	if name == "load" {
		return "load"
	}
	return "workload " + name
}

// parseMeasurements reads go-ycsb's JSON histogram summary: one object per operation with
// string values. Throughput is recomputed over the phase's wall time.
func parseMeasurements(raw []byte, elapsed time.Duration) (map[string]opResult, error) {
	var rows []map[string]string
	if err := json.Unmarshal(bytes.TrimSpace(raw), &rows); err != nil {
		return nil, fmt.Errorf("measurements %q: %w", raw, err)
	}
	out := make(map[string]opResult, len(rows))
	num := func(row map[string]string, k string) float64 {
		f, _ := strconv.ParseFloat(strings.TrimSpace(row[k]), 64)
		return f
	}
	for _, row := range rows {
		op := strings.TrimSpace(row["Operation"])
		n := int64(num(row, "Count"))
		out[op] = opResult{count: n, opsPerSec: float64(n) / elapsed.Seconds(),
			avgUS: num(row, "Avg(us)"), p50US: num(row, "50th(us)"), p99US: num(row, "99th(us)"),
			p999US: num(row, "99.9th(us)"), maxUS: num(row, "Max(us)")}
	}
	if _, ok := out["TOTAL"]; !ok {
		return nil, fmt.Errorf("measurements without a TOTAL row: %s", raw)
	}
	return out, nil
}
