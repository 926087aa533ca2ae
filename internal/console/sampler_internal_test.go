package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gopegasus/pegasus/internal/httpapi"
	"github.com/gopegasus/pegasus/internal/metric"
)

// replicaEntities returns the replica entities of a server hosting n partition replicas of
// tables of 64 partitions, with a replica server's metrics (those the console reads among
// others); busy of every 10 replicas served requests, the others are idle.
func replicaEntities(n, busy int) []metric.Entity {
	out := []metric.Entity{{Type: "server", ID: "server", Metrics: []metric.Metric{metric.GaugeOf("total_replicas", "Replicas", "", int64(n))}}}
	for i := range n {
		app, pidx := 1+i/64, i%64
		e := metric.Entity{Type: "replica", ID: fmt.Sprintf("replica@%d.%d", app, pidx),
			Attrs: [][2]string{{"table_id", strconv.Itoa(app)}, {"partition_id", strconv.Itoa(pidx)}}}
		for j, op := range allOps {
			var reqs, rate int64
			var p [5]int64
			if i%10 < busy && j%3 == 0 {
				reqs, rate, p = int64(1000*i+j), int64(10+j), [5]int64{100, 200, 300, 400 + int64(i), 5000}
			} else if i%10 == busy && j == 0 {
				p = [5]int64{1, 2, 3, 4, 5} // stale: served requests before the last window
			}
			e.Metrics = append(e.Metrics,
				metric.CounterOf(op+"_requests", "Requests", "The number of "+op+" requests", reqs),
				metric.GaugeOf(op+"_qps", "Requests", "The "+op+" requests per second over the last window", rate),
				metric.Metric{Kind: metric.Percentile, Name: op + "_latency_ns", Unit: "NanoSeconds",
					Desc: "The latency of " + op + " requests over the last window", P: p})
		}
		disk := 4096 + int64(i)
		if i%7 == 0 {
			disk = 0
		}
		e.Metrics = append(e.Metrics,
			metric.GaugeOf("rdb_total_sst_bytes", "Bytes", "The size of the sstables", 0),
			metric.GaugeOf("rdb_disk_bytes", "Bytes", "The size of the store's live files", disk),
			metric.GaugeOf("manual_compaction_running", "Compactions", "1 while a manual compaction runs", int64(i%5/4)),
			metric.GaugeOf("raft_term", "Rounds", "The replica's raft term", 3))
		out = append(out, e)
	}
	return out
}

// metricsServer serves /metrics over entities, as a replica server does; with old, as a
// server from before the console's extensions does: its filter parser refuses an argument
// it does not know. It counts the /metrics requests.
func metricsServer(t testing.TB, entities []metric.Entity, old bool) (addr string, requests *atomic.Int64) {
	mux := httpapi.New(httpapi.Options{Role: "replica", Port: 34801,
		Metrics: func(context.Context) []metric.Entity { return entities }})
	requests = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if q := r.URL.Query(); old && (q.Has("compact") || q.Has("omit_zero")) {
			httpapi.Reply(w, http.StatusBadRequest, "{\n    \"error_message\": \"unknown field compact=true\"\n}")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), requests
}

// TestCompactQuerySamplesTheSame checks that the sampler reads the same samples from the
// compact answer (no zero metrics) as from the full one.
func TestCompactQuerySamplesTheSame(t *testing.T) {
	addr, _ := metricsServer(t, replicaEntities(300, 2), false)
	c := New(Config{})
	full, err := c.scrapeMetrics(t.Context(), addr, metricsQuery)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := c.scrapeMetrics(t.Context(), addr, compactQuery)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.replicas) != 300 {
		t.Fatalf("%d replicas sampled, want 300", len(full.replicas))
	}
	var busy, stale, compacting, empty int
	for id, r := range full.replicas {
		if r.ops[0].qps > 0 {
			busy++
		} else if r.ops[0].p99 > 0 {
			stale++
		}
		if r.compacting {
			compacting++
		}
		if r.disk == 0 {
			empty++
		}
		if compact.replicas[id] != r {
			t.Fatalf("replica %v: compact %+v, full %+v", id, compact.replicas[id], r)
		}
	}
	if len(compact.replicas) != len(full.replicas) || busy == 0 || stale == 0 || compacting == 0 || empty == 0 {
		t.Fatalf("%d replicas compact, %d full; busy %d stale %d compacting %d empty %d",
			len(compact.replicas), len(full.replicas), busy, stale, compacting, empty)
	}
}

// TestScrapeOlderServer checks that a server refusing the compact query is read with the
// plain one, asked it alone in the next rounds, and sampled as a current server is.
func TestScrapeOlderServer(t *testing.T) {
	entities := replicaEntities(100, 3)
	oldAddr, oldRequests := metricsServer(t, entities, true)
	newAddr, newRequests := metricsServer(t, entities, false)
	c := New(Config{})
	want := c.scrapeNode(t.Context(), newAddr)
	if want.err != "" || len(want.replicas) != 100 || newRequests.Load() != 1 {
		t.Fatalf("current server: err %q, %d replicas, %d requests", want.err, len(want.replicas), newRequests.Load())
	}
	for round := 1; round <= 3; round++ {
		got := c.scrapeNode(t.Context(), oldAddr)
		if got.err != "" || !reflect.DeepEqual(got.replicas, want.replicas) {
			t.Fatalf("round %d: older server sampled err %q, %d replicas, differing: %v", round, got.err, len(got.replicas),
				!reflect.DeepEqual(got.replicas, want.replicas))
		}
		if n := oldRequests.Load(); n != int64(round+1) {
			t.Fatalf("round %d: %d requests to the older server, want %d", round, n, round+1)
		}
	}
	// Past plainRetry, it is asked the compact query again.
	c.mu.Lock()
	c.mu.plainUntil[oldAddr] = c.mu.plainUntil[oldAddr].Add(-plainRetry)
	c.mu.Unlock()
	if got := c.scrapeNode(t.Context(), oldAddr); got.err != "" || oldRequests.Load() != 6 {
		t.Fatalf("after plainRetry: err %q, %d requests, want 6", got.err, oldRequests.Load())
	}
	for range 2 {
		c.scrapeNode(t.Context(), newAddr)
	}
	if n := newRequests.Load(); n != 3 {
		t.Fatalf("%d requests to the current server, want 3", n)
	}
}

// BenchmarkSampleRound is the replica servers' part of one sampling round over a onebox's
// 1,608 idle partition replicas (536 on each of 3 servers, 1 in 10 busy): each server
// renders its /metrics answer and the console reads it.
func BenchmarkSampleRound(b *testing.B) {
	var addrs []string
	for range 3 {
		addr, _ := metricsServer(b, replicaEntities(536, 1), false)
		addrs = append(addrs, addr)
	}
	c := New(Config{})
	b.ReportAllocs()
	for b.Loop() {
		for _, addr := range addrs {
			if ns := c.scrapeNode(b.Context(), addr); ns.err != "" || len(ns.replicas) != 536 {
				b.Fatalf("%s: %q, %d replicas", addr, ns.err, len(ns.replicas))
			}
		}
	}
}
