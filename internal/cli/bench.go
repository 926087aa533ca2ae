package cli

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pegasus "github.com/gopegasus/pegasus"
)

// Operation names of the benchmark's reports.
const (
	opRead   = "read"
	opUpdate = "update"
	opInsert = "insert"
	opScan   = "scan"
	opMulti  = "multi_get"
	opRMW    = "read_modify_write"
)

// benchMix is a workload: the share of each operation (summing to 1) and how records are
// chosen.
type benchMix struct {
	name   string
	ops    []string
	shares []float64
	latest bool // reads favour the newest records (workload D)
}

// benchWorkloads are YCSB's core workloads A–F and single-operation workloads.
var benchWorkloads = []benchMix{
	{name: "A", ops: []string{opRead, opUpdate}, shares: []float64{0.5, 0.5}},
	{name: "B", ops: []string{opRead, opUpdate}, shares: []float64{0.95, 0.05}},
	{name: "C", ops: []string{opRead}, shares: []float64{1}},
	{name: "D", ops: []string{opRead, opInsert}, shares: []float64{0.95, 0.05}, latest: true},
	{name: "E", ops: []string{opScan, opInsert}, shares: []float64{0.95, 0.05}},
	{name: "F", ops: []string{opRead, opRMW}, shares: []float64{0.5, 0.5}},
	{name: "put", ops: []string{opUpdate}, shares: []float64{1}},
	{name: "get", ops: []string{opRead}, shares: []float64{1}},
	{name: "multi_get", ops: []string{opMulti}, shares: []float64{1}},
	{name: "scan", ops: []string{opScan}, shares: []float64{1}},
}

func findWorkload(name string) (benchMix, bool) {
	for _, w := range benchWorkloads {
		if strings.EqualFold(w.name, name) {
			return w, true
		}
	}
	return benchMix{}, false
}

// benchConfig is what the flags of "pegasus bench" say.
type benchConfig struct {
	metas        []string
	table        string
	mix          benchMix
	records      uint64
	valueSize    int
	threads      int
	duration     time.Duration
	ops          int64 // > 0: stop after this many operations instead of duration
	distribution string
	load         bool
	sortKeys     int // records per hash key
	maxScan      int // longest scan
	timeout      time.Duration
	tls          *tls.Config // nil: plaintext
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	metas := fs.String("metas", defaultMetas, "meta servers, comma separated")
	table := fs.String("table", "temp", "table to benchmark (it must exist)")
	workload := fs.String("workload", "A", "A–F (YCSB core workloads), put, get, multi_get or scan")
	records := fs.Uint64("records", 100000, "number of records (loaded by --load, read and updated by the run)")
	valueSize := fs.Int("value-size", 1000, "value size in bytes")
	threads := fs.Int("threads", 16, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "how long the run lasts (unless --ops)")
	ops := fs.Int64("ops", 0, "stop the run after this many operations (overrides --duration)")
	dist := fs.String("distribution", "zipfian", "how records are chosen: zipfian or uniform")
	load := fs.Bool("load", false, "insert the records before the run")
	sortKeys := fs.Int("sort-keys", 0, "records per hash key (default 10 for multi_get, scan and E, else 1)")
	maxScan := fs.Int("scan-length", 100, "scans read between 1 and this many records (uniformly)")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of each operation")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	tf := newClientTLSFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	tlsCfg, err := tf.config()
	if err != nil {
		return err
	}
	mix, ok := findWorkload(*workload)
	if !ok {
		return fmt.Errorf("%w: --workload %q: want A, B, C, D, E, F, put, get, multi_get or scan", errUsage, *workload)
	}
	cfg := benchConfig{metas: splitList(*metas), table: *table, mix: mix, records: *records, valueSize: *valueSize,
		threads: *threads, duration: *duration, ops: *ops, distribution: *dist, load: *load, sortKeys: *sortKeys,
		maxScan: *maxScan, timeout: *timeout, tls: tlsCfg}
	if cfg.sortKeys == 0 {
		cfg.sortKeys = 1
		if slices.Contains(mix.ops, opMulti) || slices.Contains(mix.ops, opScan) {
			cfg.sortKeys = 10
		}
	}
	switch {
	case cfg.records == 0, cfg.threads <= 0, cfg.valueSize < 0, cfg.sortKeys <= 0, cfg.maxScan <= 0:
		return fmt.Errorf("%w: --records, --threads, --sort-keys and --scan-length must be positive", errUsage)
	case cfg.ops <= 0 && cfg.duration <= 0:
		return fmt.Errorf("%w: --duration or --ops must be positive", errUsage)
	case cfg.distribution != "zipfian" && cfg.distribution != "uniform":
		return fmt.Errorf("%w: --distribution %q: want zipfian or uniform", errUsage, cfg.distribution)
	}
	rep, err := benchmark(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		(&printer{w: stdout}).writeJSON(rep)
	} else {
		rep.print(stdout)
	}
	return nil
}

// benchReport is the result of a benchmark: one entry per phase (load, run).
type benchReport struct {
	Workload     string        `json:"workload"`
	Table        string        `json:"table"`
	Records      uint64        `json:"records"`
	ValueSize    int           `json:"value_size"`
	Threads      int           `json:"threads"`
	Distribution string        `json:"distribution"`
	Phases       []phaseReport `json:"phases"`
}

type phaseReport struct {
	Phase      string     `json:"phase"` // "load" or "run"
	Seconds    float64    `json:"seconds"`
	Operations []opReport `json:"operations"` // per operation type, then "total"
}

type opReport struct {
	Op         string  `json:"op"`
	Count      uint64  `json:"count"`
	Errors     uint64  `json:"errors"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	AvgUS      float64 `json:"avg_us"`
	P50US      float64 `json:"p50_us"`
	P99US      float64 `json:"p99_us"`
	P999US     float64 `json:"p999_us"`
	MaxUS      float64 `json:"max_us"`
	FirstError string  `json:"first_error,omitempty"`
}

func (r *benchReport) print(w io.Writer) {
	fmt.Fprintf(w, "workload %s on table %s: %d records of %d bytes, %d threads, %s\n\n",
		r.Workload, r.Table, r.Records, r.ValueSize, r.Threads, r.Distribution)
	var rows [][]any
	for _, p := range r.Phases {
		for _, o := range p.Operations {
			rows = append(rows, []any{p.Phase, o.Op, o.Count, o.Errors, fmt.Sprintf("%.0f", o.OpsPerSec),
				fmtUS(o.AvgUS), fmtUS(o.P50US), fmtUS(o.P99US), fmtUS(o.P999US), fmtUS(o.MaxUS)})
		}
	}
	(&printer{w: w}).table([]string{"phase", "op", "count", "errors", "ops/s", "avg", "p50", "p99", "p999", "max"}, rows, "", nil)
	for _, p := range r.Phases {
		for _, o := range p.Operations {
			if o.FirstError != "" {
				fmt.Fprintf(w, "\n%s %s: first error: %s\n", p.Phase, o.Op, o.FirstError)
			}
		}
	}
}

func fmtUS(us float64) string {
	switch {
	case us >= 10000:
		return strconv.FormatFloat(us/1000, 'f', 1, 64) + "ms"
	case us >= 1000:
		return strconv.FormatFloat(us/1000, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(us, 'f', 0, 64) + "µs"
}

// opStats collects one operation type's latencies and errors across workers.
type opStats struct {
	hist     histogram
	errors   atomic.Uint64
	firstErr atomic.Pointer[string]
}

func (s *opStats) done(start time.Time, err error) {
	if err != nil {
		s.errors.Add(1)
		msg := err.Error()
		s.firstErr.CompareAndSwap(nil, &msg)
		return
	}
	s.hist.record(time.Since(start))
}

// bench is one running benchmark.
type bench struct {
	cfg     benchConfig
	tbl     pegasus.TableConnector
	values  []byte // random bytes values are cut from
	chooser keyChooser
	// inserted counts the records that exist: reads and updates choose below it, inserts
	// take the next id.
	inserted atomic.Uint64
	budget   atomic.Int64 // operations left when --ops is set
}

func benchmark(ctx context.Context, cfg benchConfig, stderr io.Writer) (*benchReport, error) {
	cl, err := pegasus.New(pegasus.Config{MetaServers: cfg.metas, TLS: cfg.tls})
	if err != nil {
		return nil, fmt.Errorf("%w: --metas: %v", errUsage, err)
	}
	defer cl.Close()
	octx, cancel := context.WithTimeout(ctx, cfg.timeout)
	tbl, err := cl.OpenTable(octx, cfg.table)
	cancel()
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, tbl: tbl, values: make([]byte, cfg.valueSize+4096)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b.values {
		b.values[i] = byte(rng.Uint32())
	}
	z := newZipfian(cfg.records, zipfianTheta)
	switch {
	case cfg.mix.latest:
		b.chooser = latestChooser{z}
	case cfg.distribution == "uniform":
		b.chooser = uniformChooser{}
	default:
		b.chooser = zipfChooser{z}
	}
	rep := &benchReport{Workload: cfg.mix.name, Table: cfg.table, Records: cfg.records, ValueSize: cfg.valueSize,
		Threads: cfg.threads, Distribution: cfg.distribution}
	if cfg.mix.latest {
		rep.Distribution = "latest"
	}
	if cfg.load {
		p, err := b.phase(ctx, "load", stderr)
		if err != nil {
			return nil, err
		}
		rep.Phases = append(rep.Phases, *p)
	}
	b.inserted.Store(cfg.records)
	p, err := b.phase(ctx, "run", stderr)
	if err != nil {
		return nil, err
	}
	rep.Phases = append(rep.Phases, *p)
	return rep, nil
}

// phase runs the load (insert every record once) or the run (the workload's mix until the
// duration or the operation budget is spent), printing progress every second.
func (b *bench) phase(ctx context.Context, name string, stderr io.Writer) (*phaseReport, error) {
	load := name == "load"
	ops := b.cfg.mix.ops
	if load {
		ops = []string{opInsert}
	}
	stats := make(map[string]*opStats, len(ops))
	for _, op := range ops {
		stats[op] = &opStats{}
	}
	var (
		runCtx context.Context
		cancel context.CancelFunc
	)
	switch {
	case load:
		runCtx, cancel = context.WithCancel(ctx)
		b.inserted.Store(0)
	case b.cfg.ops > 0:
		runCtx, cancel = context.WithCancel(ctx)
		b.budget.Store(b.cfg.ops)
	default:
		runCtx, cancel = context.WithTimeout(ctx, b.cfg.duration)
	}
	defer cancel()
	var loadNext atomic.Uint64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range b.cfg.threads {
		r := rand.New(rand.NewPCG(uint64(w)+1, uint64(time.Now().UnixNano())))
		wg.Go(func() {
			for !ended(runCtx) {
				if load {
					id := loadNext.Add(1) - 1
					if id >= b.cfg.records {
						return
					}
					st := stats[opInsert]
					t0 := time.Now()
					st.done(t0, b.write(runCtx, r, id))
					continue
				}
				if b.cfg.ops > 0 && b.budget.Add(-1) < 0 {
					return
				}
				op := b.pick(r)
				t0 := time.Now()
				err := b.do(runCtx, r, op)
				if err != nil && ended(runCtx) {
					return // the run's end cut this operation short: not an error
				}
				stats[op].done(t0, err)
			}
		})
	}
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Go(func() { b.progress(name, start, stats, stop, stderr) })
	wg.Wait()
	close(stop)
	pwg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if load {
		b.inserted.Store(b.cfg.records)
	}
	elapsed := time.Since(start)
	rep := &phaseReport{Phase: name, Seconds: elapsed.Seconds()}
	var total opStats
	for _, op := range ops {
		s := stats[op]
		rep.Operations = append(rep.Operations, s.report(op, elapsed))
		total.hist.merge(&s.hist)
		total.errors.Add(s.errors.Load())
	}
	if len(ops) > 1 {
		rep.Operations = append(rep.Operations, total.report("total", elapsed))
	}
	return rep, nil
}

// ended reports whether ctx is done or past its deadline: the client fails a call as soon as
// no time is left, which may be a little before the context's timer closes Done.
func ended(ctx context.Context) bool {
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return true
	}
	return ctx.Err() != nil
}

func (s *opStats) report(op string, elapsed time.Duration) opReport {
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	r := opReport{Op: op, Count: s.hist.count(), Errors: s.errors.Load(),
		OpsPerSec: float64(s.hist.count()) / elapsed.Seconds(),
		AvgUS:     us(s.hist.mean()), P50US: us(s.hist.quantile(0.5)), P99US: us(s.hist.quantile(0.99)),
		P999US: us(s.hist.quantile(0.999)), MaxUS: us(time.Duration(s.hist.max.Load()))}
	if e := s.firstErr.Load(); e != nil {
		r.FirstError = *e
	}
	return r
}

// progress prints one line a second: operations per second over the last second, the p99
// so far and the errors so far.
func (b *bench) progress(phase string, start time.Time, stats map[string]*opStats, stop <-chan struct{}, w io.Writer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			var all histogram
			var errs uint64
			for _, s := range stats {
				all.merge(&s.hist)
				errs += s.errors.Load()
			}
			n := all.count()
			fmt.Fprintf(w, "%s %4.0fs: %d ops, %.0f ops/s, p99 %s, errors %d\n", phase, now.Sub(start).Seconds(), n,
				float64(n-last), fmtUS(float64(all.quantile(0.99))/1e3), errs)
			last = n
		}
	}
}

func (b *bench) pick(r *rand.Rand) string {
	ops := b.cfg.mix.ops
	if len(ops) == 1 {
		return ops[0]
	}
	u := r.Float64()
	for i, s := range b.cfg.mix.shares {
		if u < s {
			return ops[i]
		}
		u -= s
	}
	return ops[len(ops)-1]
}

// key returns the hash key and sort key of record id: records are grouped sortKeys to a
// hash key, and hash keys are spread by a hash so neighbouring ids land apart.
func (b *bench) key(id uint64) ([]byte, []byte) {
	g := id / uint64(b.cfg.sortKeys)
	h := strconv.AppendUint([]byte("user"), scramble(g), 10)
	s := fmt.Appendf(nil, "f%06d", id%uint64(b.cfg.sortKeys))
	return h, s
}

func (b *bench) value(r *rand.Rand) []byte {
	off := r.IntN(len(b.values) - b.cfg.valueSize + 1)
	return b.values[off : off+b.cfg.valueSize]
}

func (b *bench) write(ctx context.Context, r *rand.Rand, id uint64) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	h, s := b.key(id)
	return b.tbl.Set(ctx, h, s, b.value(r))
}

func (b *bench) do(ctx context.Context, r *rand.Rand, op string) error {
	limit := b.inserted.Load()
	id := b.chooser.next(r, limit)
	switch op {
	case opInsert:
		id = b.inserted.Add(1) - 1
		return b.write(ctx, r, id)
	case opUpdate:
		return b.write(ctx, r, id)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	h, s := b.key(id)
	switch op {
	case opRead:
		_, err := b.tbl.Get(ctx, h, s)
		return err
	case opRMW:
		if _, err := b.tbl.Get(ctx, h, s); err != nil {
			return err
		}
		return b.tbl.Set(ctx, h, s, b.value(r))
	case opMulti:
		_, _, err := b.tbl.MultiGet(ctx, h, nil)
		return err
	case opScan:
		n := 1 + r.IntN(b.cfg.maxScan)
		o := pegasus.NewScanOptions()
		o.BatchSize = min(n, 1000)
		sc, err := b.tbl.GetScanner(ctx, h, s, []byte{}, o)
		if err != nil {
			return err
		}
		defer sc.Close()
		for range n {
			done, _, _, _, err := sc.Next(ctx)
			if err != nil || done {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("bench: unknown operation %q", op)
}
