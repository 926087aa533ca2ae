package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/certs"
)

// BenchmarkTLSCost runs YCSB workloads A (50% reads, 50% updates) and C (reads only)
// against one onebox serving TLS beside plaintext (--tls): plaintext and TLS clients in
// turn on the same servers and data, so the ratio is TLS's cost. Each sub-benchmark is one
// run of PEGASUS_TLS_BENCH_DURATION (default 5 s), 16 threads, 10,000 records of 1,000
// bytes, zipfian; it reports ops/s and the p99 latency.
//
//	go test -run '^$' -bench TLSCost -benchtime 1x -count 3 ./internal/cli/
func BenchmarkTLSCost(b *testing.B) {
	d := 5 * time.Second
	if v, err := time.ParseDuration(os.Getenv("PEGASUS_TLS_BENCH_DURATION")); err == nil {
		d = v
	}
	dir := b.TempDir()
	lines := startOnebox(b, "--data", dir, "--metas", "1", "--replicas", "3", "--meta-port", "0", "--replica-port", "0", "--tls")
	var metaAddr string
	for _, l := range lines {
		if after, ok := strings.CutPrefix(l, "onebox: metas "); ok {
			metaAddr, _, _ = strings.Cut(after, " ")
			metaAddr, _, _ = strings.Cut(metaAddr, ",")
		}
	}
	f := certs.FilesIn(filepath.Join(dir, "tls"))
	clientTLS, err := certs.ClientConfig(f.CA, f.ClientCert, f.ClientKey)
	if err != nil {
		b.Fatal(err)
	}
	base := benchConfig{metas: []string{metaAddr}, table: "temp", records: 10000, valueSize: 1000, threads: 16,
		distribution: "zipfian", sortKeys: 1, maxScan: 100, timeout: 10 * time.Second}
	load := base
	load.mix, _ = findWorkload("C")
	load.load, load.ops = true, 1
	if _, err := benchmark(b.Context(), load, io.Discard); err != nil {
		b.Fatal(err)
	}
	for _, wl := range []string{"A", "C"} {
		for _, withTLS := range []bool{false, true} {
			name := wl + "/plain"
			if withTLS {
				name = wl + "/tls"
			}
			b.Run(name, func(b *testing.B) {
				cfg := base
				cfg.mix, _ = findWorkload(wl)
				cfg.duration = d
				if withTLS {
					cfg.tls = clientTLS
				}
				rep, err := benchmark(b.Context(), cfg, io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				run := rep.Phases[len(rep.Phases)-1]
				total := run.Operations[len(run.Operations)-1]
				if total.Errors > 0 {
					b.Fatalf("%d errors, first: %s", total.Errors, total.FirstError)
				}
				b.ReportMetric(total.OpsPerSec, "ops/s")
				b.ReportMetric(total.P99US, "p99-µs")
				b.ReportMetric(0, "ns/op") // one fixed-duration run, not per-op timing
			})
		}
	}
}
