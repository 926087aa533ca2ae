package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// utime 250 and stime 50 ticks; the command name holds a space and a parenthesis.
	stat := "1234 (my (odd) srv) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0"
	got, err := parseStatCPU(stat)
	if err != nil || got != 3.0 {
		t.Fatalf("parseStatCPU = %v, %v; want 3", got, err)
	}
	if _, err := parseStatCPU("garbage"); err == nil {
		t.Fatal("malformed stat accepted")
	}
}

func TestParseMeasurements(t *testing.T) {
	raw := `[{"Operation":"READ","Count":"1000","Avg(us)":"200","50th(us)":"150","99th(us)":"900","99.9th(us)":"2000","Max(us)":"5000"},` +
		`{"Operation":"TOTAL","Count":"1500","Avg(us)":"250","50th(us)":"180","99th(us)":"950","99.9th(us)":"2100","Max(us)":"5000"},` +
		`{"Operation":"READ_ERROR","Count":"3","Avg(us)":"1","50th(us)":"1","99th(us)":"1","99.9th(us)":"1","Max(us)":"1"}]`
	ops, err := parseMeasurements([]byte(raw+"\n"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := result{ops: ops, cpuSeconds: 0.3}
	if tot := r.total(); tot.count != 1500 || tot.opsPerSec != 150 || tot.p99US != 950 || tot.p999US != 2100 {
		t.Fatalf("total %+v", tot)
	}
	if r.errors() != 3 || r.cpuPerOpUS() != 200 {
		t.Fatalf("errors %d, cpu/op %v", r.errors(), r.cpuPerOpUS())
	}
	if _, err := parseMeasurements([]byte(`[{"Operation":"READ","Count":"1"}]`), time.Second); err == nil {
		t.Fatal("measurements without TOTAL accepted")
	}
}

func TestTargets(t *testing.T) {
	// mk is a phase whose TOTAL and update latency are p99 (updates only count for A).
	mk := func(store, phase string, ops, p99, cpu float64) result {
		return result{store: store, phase: phase, cpuSeconds: cpu * ops / 1e6,
			ops: map[string]opResult{"TOTAL": {count: int64(ops), opsPerSec: ops, p99US: p99}, "UPDATE": {p99US: p99}}}
	}
	const ob, ou, rd = "gopegasus onebox", "gopegasus onebox, durability os (unsafe)", "Redis (AOF everysec)"
	r := &report{results: []result{
		mk(ob, "load", 300, 900, 120), mk(ob, "workload A", 400, 300, 10), mk(ob, "workload C", 900, 100, 10),
		mk(ou, "load", 260, 500, 90), mk(ou, "workload A", 800, 200, 10),
		mk(rd, "load", 1000, 100, 5), mk(rd, "workload A", 1000, 60, 5), mk(rd, "workload C", 1000, 40, 4),
		mk("etcd (3 members)", "workload A", 100, 500, 50),
	}}
	got := strings.Join(r.targets(), "\n")
	for _, want := range []string{
		"**met**: A throughput, durability always, ≥ 0.35×",               // 400 vs 1000
		"**met**: A throughput, durability os, ≥ 0.70×",                   // 800 vs 1000
		"**missed**: A throughput ≥ 10.00× etcd",                          // 400 vs 100
		"**met**: load throughput ≥ 0.25×",                                // 300 vs 1000
		"**met**: load throughput, durability os, ≥ 0.25×",                // 260 vs 1000
		"**missed**: gopegasus onebox: A update p99",                      // 300 vs 60
		"**met**: gopegasus onebox, durability os (unsafe): A update p99", // 200 vs 60
		"**missed**: gopegasus onebox: server CPU per insert",
		"**met**: gopegasus onebox, durability os (unsafe): server CPU per insert",
		"**missed**: C throughput ≥ 1.00×", "**missed**: C server CPU/op", "**missed**: workload C p99",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("targets lack %q:\n%s", want, got)
		}
	}
	if md := r.markdown(); !strings.Contains(md, "| gopegasus onebox | workload A | 400 |") {
		t.Errorf("markdown table:\n%s", md)
	}
}

func TestExpiredWaitsForDone(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if !expired(ctx) || ctx.Err() == nil {
		t.Fatal("a context past its deadline is not expired")
	}
	if expired(context.Background()) {
		t.Fatal("a context without deadline expired")
	}
}
