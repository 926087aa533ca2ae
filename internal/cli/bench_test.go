package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/gopegasus/pegasus/internal/testcluster"
)

func TestBenchWorkloads(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Replicas: 3})
	c.CreateTable(t, "temp", 8)
	metas := strings.Join(c.MetaAddrs(), ",")
	wantOps := map[string][]string{
		"A": {opRead, opUpdate, "total"}, "B": {opRead, opUpdate, "total"}, "C": {opRead},
		"D": {opRead, opInsert, "total"}, "E": {opScan, opInsert, "total"}, "F": {opRead, opRMW, "total"},
		"put": {opUpdate}, "get": {opRead}, "multi_get": {opMulti}, "scan": {opScan},
	}
	for _, w := range benchWorkloads {
		t.Run(w.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := []string{"--metas", metas, "--workload", w.name, "--records", "200", "--value-size", "100",
				"--threads", "4", "--ops", "400", "--load", "--json"}
			if w.name == "C" {
				args = append(args, "--distribution", "uniform")
			}
			if err := runBench(t.Context(), args, &out, &errOut); err != nil {
				t.Fatalf("%v\n%s", err, errOut.String())
			}
			var rep benchReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("report is not JSON: %v\n%s", err, out.String())
			}
			if len(rep.Phases) != 2 || rep.Phases[0].Phase != "load" || rep.Phases[1].Phase != "run" {
				t.Fatalf("phases: %+v", rep.Phases)
			}
			load := rep.Phases[0].Operations
			if len(load) != 1 || load[0].Op != opInsert || load[0].Count != 200 || load[0].Errors != 0 {
				t.Fatalf("load: %+v", load)
			}
			run := rep.Phases[1]
			var names []string
			var total uint64
			for _, o := range run.Operations {
				names = append(names, o.Op)
				if o.Errors != 0 {
					t.Fatalf("%s: %d errors, first %q", o.Op, o.Errors, o.FirstError)
				}
				if o.Op != "total" {
					total += o.Count
				}
				if o.Count > 0 && (o.OpsPerSec <= 0 || o.AvgUS <= 0 || o.P50US <= 0 || o.P50US > o.P99US || o.P99US > o.P999US || o.P999US > o.MaxUS) {
					t.Fatalf("%s: implausible latencies %+v", o.Op, o)
				}
			}
			if !slices.Equal(names, wantOps[w.name]) {
				t.Fatalf("operations %v, want %v", names, wantOps[w.name])
			}
			if total != 400 || run.Operations[0].Count == 0 {
				t.Fatalf("run did %d operations (want 400): %+v", total, run.Operations)
			}
		})
	}

	t.Run("text report and duration", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := runBench(t.Context(), []string{"--metas", metas, "--workload", "get", "--records", "100", "--threads", "2", "--duration", "1200ms"}, &out, &errOut)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut.String())
		}
		for _, want := range []string{"workload get", "phase", "ops/s", "p999", "run", "read"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("report lacks %q:\n%s", want, out.String())
			}
		}
		if !strings.Contains(errOut.String(), "ops/s, p99") {
			t.Fatalf("no progress line on stderr: %q", errOut.String())
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{{"--workload", "Z"}, {"--distribution", "pareto"}, {"--threads", "0"}, {"--records", "0"}} {
			err := runBench(t.Context(), append([]string{"--metas", metas}, args...), &bytes.Buffer{}, &bytes.Buffer{})
			if !errors.Is(err, errUsage) {
				t.Errorf("%v: %v", args, err)
			}
		}
	})
}

func TestHistogramQuantiles(t *testing.T) {
	f := func(seed uint64, n uint16) bool {
		r := rand.New(rand.NewPCG(seed, 7))
		var h histogram
		vals := make([]time.Duration, int(n)+1)
		for i := range vals {
			// latencies from nanoseconds to seconds
			vals[i] = time.Duration(r.ExpFloat64() * float64(time.Duration(1)<<r.IntN(31)))
			h.record(vals[i])
		}
		slices.Sort(vals)
		for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
			idx := max(int(float64(len(vals))*q+0.999999)-1, 0)
			want, got := vals[idx], h.quantile(q)
			// never under-reported, at most one bucket (1/64) over
			if got < want || float64(got) > float64(want)*(1+1.0/histSub)+1 {
				t.Logf("q=%v: got %v want %v", q, got, want)
				return false
			}
		}
		return h.count() == uint64(len(vals)) && h.max.Load() == uint64(vals[len(vals)-1])
	}
	if err := quick.Check(f, nil); err != nil {
		t.Fatal(err)
	}
}

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v += 1 + v/200 {
		i := histIndex(v)
		if i < prev || v > histUpper(i) || (i > 0 && v <= histUpper(i-1)) {
			t.Fatalf("v=%d bucket %d (upper %d, previous upper %d)", v, i, histUpper(i), histUpper(i-1))
		}
		prev = i
	}
	if histIndex(1<<62) != histBuckets-1 {
		t.Fatal("huge values must land in the last bucket")
	}
}

func TestZipfianSkew(t *testing.T) {
	z := newZipfian(1000, zipfianTheta)
	r := rand.New(rand.NewPCG(1, 1))
	counts := make([]int, 1000)
	for range 100000 {
		counts[z.rank(r)]++
	}
	// rank 0 is the most popular, and the first 10% of ranks take most draws
	var top int
	for _, c := range counts[:100] {
		top += c
	}
	if counts[0] < counts[1] || counts[1] < counts[10] || top < 50000 {
		t.Fatalf("not skewed: rank0 %d rank1 %d rank10 %d top10%% %d", counts[0], counts[1], counts[10], top)
	}
	l := latestChooser{z}
	for range 1000 {
		if id := l.next(r, 5); id >= 5 {
			t.Fatalf("latest chose %d of 5", id)
		}
	}
}
