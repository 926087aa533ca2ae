package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/metric"
)

// The reference: how /metrics was rendered before appendMetrics, kept to check that the
// direct encoder writes the same bytes. It builds a document of ordered objects, marshals
// it with encoding/json and indents it with json.Indent.

type refOrdered []struct {
	k string
	v any
}

func (o *refOrdered) add(k string, v any) {
	*o = append(*o, struct {
		k string
		v any
	}{k, v})
}

func (o refOrdered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(marshal(kv.k))
		b.WriteByte(':')
		v, err := marshalErr(kv.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func refPrettyJSON(v any) string {
	raw, err := marshalErr(v)
	if err != nil {
		return "{}"
	}
	var out bytes.Buffer
	_ = json.Indent(&out, raw, "", "    ")
	return out.String()
}

func refRender(f *metricsFilter, m *metric.Metric) refOrdered {
	o := refOrdered{}
	if f.fields.typ {
		o.add("type", m.Kind.String())
	}
	if f.fields.name {
		o.add("name", m.Name)
	}
	if f.fields.unit {
		o.add("unit", m.Unit)
	}
	if f.fields.desc {
		o.add("desc", m.Desc)
	}
	if m.Kind == metric.Percentile {
		for i, q := range metric.QuantileNames {
			if f.fields.p[i] {
				o.add(q, m.P[i])
			}
		}
	} else if f.fields.value {
		o.add("value", m.Value)
	}
	return o
}

func refMetrics(h *metricsHeader, in []metric.Entity, f *metricsFilter) string {
	entities := []any{}
	for _, e := range in {
		if !f.entity(&e) {
			continue
		}
		var ms []any
		for _, m := range e.Metrics {
			if !allows(f.names, m.Name) {
				continue
			}
			ms = append(ms, refRender(f, &m))
		}
		if len(ms) == 0 {
			continue
		}
		attrs := refOrdered{}
		for _, a := range e.Attrs {
			attrs.add(a[0], a[1])
		}
		o := refOrdered{}
		o.add("type", e.Type)
		o.add("id", e.ID)
		o.add("attributes", attrs)
		o.add("metrics", ms)
		entities = append(entities, o)
	}
	top := refOrdered{}
	top.add("cluster", h.cluster)
	top.add("role", h.role)
	top.add("host", h.host)
	top.add("port", h.port)
	top.add("timestamp_ns", h.timestampNS)
	top.add("entities", entities)
	return refPrettyJSON(top)
}

// replicaOps are the operations a replica server counts per partition replica.
var replicaOps = []string{"get", "multi_get", "batch_get", "sortkey_count", "ttl", "scan",
	"put", "remove", "multi_put", "multi_remove", "incr", "check_and_set", "check_and_mutate"}

// replicaEntities returns n replica entities shaped as a replica server's (the same
// metrics, in its order, with its units and descriptions), spread over tables of 64
// partitions; busy of every 10 have served requests, the others are idle (counters and
// rates 0), as a server's mostly idle partitions are.
func replicaEntities(n, busy int) []metric.Entity {
	out := make([]metric.Entity, 0, n+1)
	out = append(out, metric.Entity{Type: "server", ID: "server", Metrics: []metric.Metric{
		metric.GaugeOf("total_replicas", "Replicas", "The total number of replicas", int64(n))}})
	for i := range n {
		app, pidx := 1+i/64, i%64
		active := i%10 < busy
		e := metric.Entity{Type: "replica", ID: fmt.Sprintf("replica@%d.%d", app, pidx),
			Attrs: [][2]string{{"table_id", strconv.Itoa(app)}, {"partition_id", strconv.Itoa(pidx)}}}
		for j, op := range replicaOps {
			var n, rate int64
			var p [5]int64
			if active && j%3 == 0 {
				n, rate, p = int64(1000*i+j), int64(10+j), [5]int64{100 + int64(i), 200, 300, 400 + int64(j), 5000}
			}
			e.Metrics = append(e.Metrics,
				metric.CounterOf(op+"_requests", "Requests", "The number of "+op+" requests", n),
				metric.GaugeOf(op+"_qps", "Requests", "The "+op+" requests per second over the last window", rate),
				metric.Metric{Kind: metric.Percentile, Name: op + "_latency_ns", Unit: "NanoSeconds",
					Desc: "The latency of " + op + " requests over the last window", P: p})
		}
		for j, name := range []string{"read_bytes", "write_bytes", "slow_requests", "rdb_total_sst_files",
			"rdb_total_sst_size_mb", "rdb_total_sst_bytes", "rdb_disk_bytes", "rdb_memtable_bytes", "rdb_compactions",
			"rdb_flushes", "rdb_compaction_debt_bytes", "rdb_read_amplification", "rdb_expired_records_reclaimed",
			"manual_compaction_running", "raft_is_primary", "raft_term", "raft_leader_changes", "raft_handovers",
			"raft_handovers_failed", "raft_quiesced", "raft_quiesce_wakes", "raft_ticks", "raft_lease_stalls",
			"raft_applied_index", "raft_log_entries", "raft_snapshots_installed", "raft_snapshots_sent"} {
			var v int64
			switch name {
			case "rdb_disk_bytes":
				v = 4096 + int64(i)
			case "raft_term", "raft_applied_index", "raft_quiesced":
				v = 1 + int64(j)
			case "raft_is_primary":
				v = int64(i % 3 / 2)
			}
			e.Metrics = append(e.Metrics, metric.GaugeOf(name, "Bytes", "The "+name, v))
		}
		out = append(out, e)
	}
	return out
}

// oddEntities have strings encoding/json escapes, an entity without attributes and one
// without metrics.
func oddEntities() []metric.Entity {
	return []metric.Entity{
		{Type: "server", ID: "server"},
		{Type: "table", ID: "table@1", Attrs: [][2]string{{"table_id", "1"}}, Metrics: []metric.Metric{
			metric.GaugeOf("a", "B", "quotes \" and \\ backslash, <html> & tabs\t new\nline", -5),
			metric.GaugeOf("uni", "é", "non-ASCII ünïcode, U+2028 \u2028, DEL \x7f, bad \xff UTF-8, NUL \x00", 0),
			{Kind: metric.Percentile, Name: "lat", Unit: "NanoSeconds", Desc: "d", P: [5]int64{0, 0, 0, 0, 0}},
			{Kind: metric.Percentile, Name: "lat2", Unit: "NanoSeconds", Desc: "d", P: [5]int64{0, 0, 0, 7, 0}},
		}},
		{Type: "weird \"type\"", ID: "id\n", Attrs: [][2]string{{"k\"", "v\\"}}, Metrics: []metric.Metric{
			metric.CounterOf("c", "", "", 9223372036854775807)}},
	}
}

func filterOf(t testing.TB, query string) *metricsFilter {
	t.Helper()
	args, err := ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	f, msg := parseMetricsFilter(args)
	if msg != "" {
		t.Fatalf("%q: %s", query, msg)
	}
	return f
}

var goldenQueries = []string{"", "detail=true", "with_metric_fields=", "with_metric_fields=bogus",
	"with_metric_fields=name,value,p99", "types=replica&with_metric_fields=name,value,p99&metrics=get_qps,get_latency_ns,rdb_disk_bytes",
	"metrics=nothing", "types=table", "ids=replica@1.3,table@1", "attributes=partition_id,4,table_id,9",
	"with_metric_fields=p999,type,desc,unit"}

func TestAppendMetricsMatchesReference(t *testing.T) {
	h := &metricsHeader{cluster: "onebox", role: "replica", host: "host-1", port: 34801, timestampNS: 1733500000123456789}
	docs := map[string][]metric.Entity{"replicas": replicaEntities(130, 3), "odd": oddEntities(), "none": nil}
	for name, entities := range docs {
		for _, q := range goldenQueries {
			f := filterOf(t, q)
			want := refMetrics(h, entities, f)
			got := string(appendMetrics([]byte("junk"), h, entities, f))
			if !strings.HasPrefix(got, "junk") || got[4:] != want {
				t.Fatalf("%s ?%s: differs from the reference\n got %s\nwant %s", name, q, got, want)
			}
			// compact=true is the same document without the indentation.
			f.compact = true
			var c bytes.Buffer
			if err := json.Compact(&c, []byte(want)); err != nil {
				t.Fatal(err)
			}
			if got := appendMetrics(nil, h, entities, f); !bytes.Equal(got, c.Bytes()) {
				t.Fatalf("%s ?%s&compact=true:\n got %s\nwant %s", name, q, got, c.Bytes())
			}
		}
	}
}

// TestMetricsOmitZero checks omit_zero=true against the full answer: the same entities,
// each with its nonzero metrics only.
func TestMetricsOmitZero(t *testing.T) {
	h := &metricsHeader{cluster: "c", role: "replica", host: "h", port: 1, timestampNS: 2}
	for _, entities := range [][]metric.Entity{replicaEntities(130, 3), oddEntities()} {
		byID := map[string]*metric.Metric{}
		for i := range entities {
			for j := range entities[i].Metrics {
				byID[entities[i].ID+"/"+entities[i].Metrics[j].Name] = &entities[i].Metrics[j]
			}
		}
		dropped := 0
		for _, q := range goldenQueries {
			var full, omitted metricsBody
			f := filterOf(t, q)
			if err := json.Unmarshal(appendMetrics(nil, h, entities, f), &full); err != nil {
				t.Fatal(err)
			}
			f = filterOf(t, q+"&omit_zero=true")
			if err := json.Unmarshal(appendMetrics(nil, h, entities, f), &omitted); err != nil {
				t.Fatal(err)
			}
			if len(full.Entities) != len(omitted.Entities) {
				t.Fatalf("?%s: %d entities, %d with omit_zero", q, len(full.Entities), len(omitted.Entities))
			}
			for i, e := range full.Entities {
				o := omitted.Entities[i]
				if o.ID != e.ID || o.Type != e.Type || fmt.Sprint(o.Attributes) != fmt.Sprint(e.Attributes) || o.Metrics == nil {
					t.Fatalf("?%s: entity %+v, with omit_zero %+v", q, e, o)
				}
				var keep []map[string]any
				for _, m := range e.Metrics {
					name, _ := m["name"].(string)
					src := byID[e.ID+"/"+name]
					if src == nil && f.fields.name {
						t.Fatalf("?%s: metric %q of %s not found", q, name, e.ID)
					}
					if src != nil && isZero(src) {
						dropped++
						continue
					}
					keep = append(keep, m)
				}
				if f.fields.name && fmt.Sprint(keep) != fmt.Sprint(o.Metrics) {
					t.Fatalf("?%s %s: metrics %v with omit_zero, want %v", q, e.ID, o.Metrics, keep)
				}
			}
		}
		if dropped == 0 {
			t.Fatal("omit_zero dropped nothing")
		}
	}
}

func TestMetricsExtensionArgs(t *testing.T) {
	srv, _ := testServer(t)
	status, pretty, _ := get(t, srv.URL+"/metrics?types=replica")
	if status != 200 || !strings.Contains(pretty, "\n    ") {
		t.Fatalf("/metrics = %d %s", status, pretty)
	}
	status, compact, _ := get(t, srv.URL+"/metrics?types=replica&compact=true")
	var want bytes.Buffer
	_ = json.Compact(&want, []byte(pretty))
	// The timestamps differ: compare what precedes and follows them.
	cut := func(s string) string {
		i := strings.Index(s, `"timestamp_ns":`)
		j := strings.Index(s, `"entities"`)
		if i < 0 || j < i {
			return s
		}
		return s[:i] + s[j:]
	}
	if status != 200 || cut(compact) != cut(want.String()) {
		t.Fatalf("compact=true: %d %s\nwant %s", status, compact, want.String())
	}
	status, body, _ := get(t, srv.URL+"/metrics?types=replica&compact=false&omit_zero=false")
	if status != 200 || !strings.Contains(body, "\n    ") || !strings.Contains(body, `"value": 7`) {
		t.Fatalf("compact=false: %d %s", status, body)
	}
	for _, tc := range []struct{ query, msg string }{
		{"?compact=yes", "the value of compact should be a boolean value, i.e. true or false"},
		{"?omit_zero", "the value of omit_zero should be a boolean value, i.e. true or false"},
		{"?omit_zero=1", "the value of omit_zero should be a boolean value, i.e. true or false"},
	} {
		status, body, _ := get(t, srv.URL+"/metrics"+tc.query)
		if status != 400 || body != "{\n    \"error_message\": \""+tc.msg+"\"\n}" {
			t.Errorf("/metrics%s = %d %q", tc.query, status, body)
		}
	}
}

// consoleQuery is the console's /metrics query (internal/console's metricsQuery).
var consoleQuery = func() string {
	names := []string{"rdb_disk_bytes", "manual_compaction_running"}
	for _, op := range replicaOps {
		names = append(names, op+"_qps", op+"_latency_ns")
	}
	return "types=replica&with_metric_fields=name,value,p99&metrics=" + strings.Join(names, ",")
}()

// BenchmarkMetrics renders one /metrics answer of a server of 536 replicas (a third of a
// onebox's 1,608), idle but for 1 in 10, for the console's query: by the reference (the
// former implementation), by appendMetrics, and with the console's extensions.
func BenchmarkMetrics(b *testing.B) {
	entities := replicaEntities(536, 1)
	h := &metricsHeader{cluster: "onebox", role: "replica", host: "host", port: 34801, timestampNS: 1733500000123456789}
	for _, bc := range []struct{ name, query string }{
		{"all/reference", ""},
		{"all/direct", ""},
		{"console/reference", consoleQuery},
		{"console/direct", consoleQuery},
		{"console/compact", consoleQuery + "&compact=true"},
		{"console/compact+omit_zero", consoleQuery + "&compact=true&omit_zero=true"},
	} {
		f := filterOf(b, bc.query)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				if strings.HasSuffix(bc.name, "/reference") {
					buf = append(buf[:0], refMetrics(h, entities, f)...)
				} else {
					buf = appendMetrics(buf[:0], h, entities, f)
				}
			}
			b.ReportMetric(float64(len(buf)), "bytes/answer")
		})
	}
}
