package cli

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/certs"
)

// BenchmarkTLSCost runs YCSB workloads A (50% reads, 50% updates) and C (reads only)
// against one onebox serving TLS beside plaintext (--tls): plaintext and TLS clients in
// turn on the same servers and data, so the ratio is TLS's cost. Each sub-benchmark is one
// run of PEGASUS_TLS_BENCH_DURATION (default 5 s), 16 threads, 10,000 records of 1,000
// bytes, zipfian; it reports ops/s and the p99 latency. PEGASUS_TLS_BENCH_ROUNDS rounds
// (default 3) of the four, in one process, one onebox:
//
//	go test -run '^$' -bench TLSCost -benchtime 1x ./internal/cli/
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
	// Rounds alternate which goes first, so neither side always runs on the servers the
	// other just warmed (or left compacting).
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("PEGASUS_TLS_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for round := range rounds {
		for _, wl := range []string{"A", "C"} {
			order := []bool{false, true}
			if round%2 == 1 {
				order = []bool{true, false}
			}
			for _, withTLS := range order {
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
	// The TLS runs were TLS: the meta counted their clients' TLS connections.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS, Proxy: nil}}
	resp, err := hc.Get("https://" + metaAddr + "/metrics/prometheus")
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	counted := false
	for _, line := range strings.Split(string(body), "\n") {
		counted = counted || strings.HasPrefix(line, "pegasus_server_rpc_tls_connections_total ") && !strings.HasSuffix(line, " 0")
	}
	if !counted {
		b.Fatalf("the meta counted no TLS connection:\n%s", body)
	}
}
