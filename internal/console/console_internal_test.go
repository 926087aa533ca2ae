package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/httpapi"
)

func TestHistoryKeepsTheLastPoints(t *testing.T) {
	var h history
	for i := range 10 {
		h = h.push(point{T: int64(i)}, 4)
		if want := min(i+1, 4); len(h) != want {
			t.Fatalf("after %d pushes: %d points, want %d", i+1, len(h), want)
		}
	}
	var ts []int64
	for _, p := range h {
		ts = append(ts, p.T)
	}
	if !slices.Equal(ts, []int64{6, 7, 8, 9}) {
		t.Fatalf("kept %v, want the last four, oldest first", ts)
	}
}

func opIndex(t *testing.T, op string) int {
	t.Helper()
	i := slices.Index(allOps, op)
	if i < 0 {
		t.Fatalf("unknown op %s", op)
	}
	return i
}

func TestPointSplitsReadsAndWritesAndIgnoresIdleLatency(t *testing.T) {
	var r replicaSample
	r.ops[opIndex(t, "get")] = opStat{qps: 10, p99: 2000}
	r.ops[opIndex(t, "scan")] = opStat{qps: 0, p99: 9_000_000} // stale: no request in the window
	r.ops[opIndex(t, "put")] = opStat{qps: 4, p99: 5000}
	r.ops[opIndex(t, "check_and_set")] = opStat{qps: 1, p99: 7000}
	var p point
	p.add(&r)
	p.add(&r)
	want := point{ReadQPS: 20, WriteQPS: 10, ReadP99: 2000, WriteP99: 7000}
	if p != want {
		t.Fatalf("point %+v, want %+v", p, want)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"deflate, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0", false},
		{"x-gzip", false},
	} {
		t.Run(tc.header, func(t *testing.T) {
			r := &httpapi.Request{Request: &http.Request{Header: http.Header{"Accept-Encoding": {tc.header}}}}
			if got := acceptsGzip(r); got != tc.want {
				t.Errorf("Accept-Encoding %q: %v, want %v", tc.header, got, tc.want)
			}
		})
	}
}

func TestTableSummaryAndPartitions(t *testing.T) {
	tbl := Table{AppID: 3, Name: "t", ReplicaCount: 3, Partitions: []Partition{
		{Index: 0, Primary: "a", Secondaries: []string{"b", "c"}, Health: Healthy},
		{Index: 1, Primary: "b", Secondaries: []string{"a"}, Dropped: []string{"c"}, Health: Unhealthy},
		{Index: 2, Health: Unreadable},
	}}
	rs := func(get, put float64, disk int64) replicaSample {
		var r replicaSample
		r.ops[opIndex(t, "get")] = opStat{qps: get, p99: int64(get * 100)}
		r.ops[opIndex(t, "put")] = opStat{qps: put, p99: 900}
		r.disk = disk
		return r
	}
	s := &sampled{at: time.Unix(100, 0), nodes: map[string]*nodeSample{
		"a": {replicas: map[gpid]replicaSample{{3, 0}: rs(5, 1, 1000), {3, 1}: rs(0, 0, 70), {3, 2}: rs(0, 0, 30)}},
		"b": {replicas: map[gpid]replicaSample{{3, 0}: rs(0, 0, 900), {3, 1}: rs(7, 0, 80)}},
		"c": {err: "down", replicas: map[gpid]replicaSample{}},
	}}
	v := tableSummary(&tbl, s.byPartition())
	if v.Health != (healthView{Healthy: 1, Unhealthy: 1, Unreadable: 1}) {
		t.Errorf("health %+v", v.Health)
	}
	// Size: each partition's primary (a for 0, b for 1), the largest replica without one.
	if v.SizeBytes != 1000+80+30 || v.DiskBytes != 1000+70+30+900+80 {
		t.Errorf("size %d, disk %d", v.SizeBytes, v.DiskBytes)
	}
	if v.ReadQPS != 12 || v.WriteQPS != 1 {
		t.Errorf("rates %v %v", v.ReadQPS, v.WriteQPS)
	}
	want := []opView{{Op: "get", QPS: 12, P99: 700}, {Op: "put", QPS: 1, P99: 900}}
	if !slices.Equal(v.Ops, want) {
		t.Errorf("ops %+v, want %+v", v.Ops, want)
	}

	c := New(Config{})
	d := c.tableDetail(&State{Tables: []Table{tbl}}, s, &tbl)
	if len(d.PartList) != 3 || d.PartList[2].SizeBytes == nil || *d.PartList[2].SizeBytes != 30 ||
		d.PartList[1].ReadQPS != 7 || !slices.Equal(d.PartList[1].Dropped, []string{"c"}) || d.PartList[2].Secondaries == nil {
		t.Errorf("partitions %+v", d.PartList)
	}
}

func TestOperationsAddCompactionsInProgress(t *testing.T) {
	st := &State{
		Tables: []Table{{AppID: 1, Name: "a"}, {AppID: 2, Name: "b"}, {AppID: 3, Name: "c"}},
		Operations: []Operation{
			{Kind: "replica_rebuild", Table: "b", Partition: 4, Done: 5, Total: 9},
			{Kind: "replica_rebuild", Table: "b", Partition: 1, Done: 1, Total: 9},
		},
	}
	s := &sampled{compactions: map[int32]*compactionCount{
		1: {Running: 2, Queuing: 3, Finished: 5, Idle: 7},
		3: {Finished: 8, Idle: 1}, // done: not in progress
	}}
	ops := New(Config{}).operations(st, s)
	var got []string
	for _, o := range ops {
		got = append(got, o.Kind+" "+o.Table)
	}
	if !slices.Equal(got, []string{"manual_compaction a", "replica_rebuild b", "replica_rebuild b"}) || ops[1].Partition != 1 {
		t.Fatalf("operations %+v", ops)
	}
	if c := ops[0]; c.Done != 5 || c.Total != 10 || c.Partition != -1 || c.Unit != "replicas" {
		t.Fatalf("compaction %+v", c)
	}
}

func TestCompactionTables(t *testing.T) {
	st := &State{Tables: []Table{
		{AppID: 1, Envs: map[string]string{"manual_compact.once.trigger_time": "1700000000"}},
		{AppID: 2, Envs: map[string]string{"rocksdb.usage_scenario": "normal"}},
		{AppID: 3, Envs: map[string]string{"manual_compact.periodic.trigger_time": "3:00"}},
		{AppID: 4},
	}}
	if got := compactionTables(st); !slices.Equal(got, []int32{1, 3}) {
		t.Fatalf("%v", got)
	}
}

// TestPageIsSelfContained checks the assembled page: nothing it references is outside the
// server, its Content-Security-Policy allows exactly its inline style and script, and the
// gzipped copy is the same document.
func TestPageIsSelfContained(t *testing.T) {
	p := buildPage()
	doc := string(p.raw)
	for _, m := range regexp.MustCompile(`(?i)(?:src|href|action)\s*=\s*["']?([^"'\s>]+)|url\(([^)]*)\)|@import|https?://[^\s"'<>)]+`).FindAllStringSubmatch(doc, -1) {
		ref := m[0]
		switch {
		case ref == "http://www.w3.org/2000/svg": // a namespace name, never fetched
		case strings.Contains(ref, "@import"), strings.HasPrefix(ref, "url("):
			t.Errorf("the page imports %q", ref)
		case strings.HasPrefix(ref, "http"):
			t.Errorf("the page names an absolute URL: %q", ref)
		default:
			target := m[1]
			u, err := url.Parse(target)
			if err != nil || (u.Scheme != "" && u.Scheme != "data") || u.Host != "" {
				t.Errorf("the page references %q outside the server", target)
			}
		}
	}
	inline := func(tag string) string {
		_, rest, _ := strings.Cut(doc, "<"+tag+">")
		body, _, ok := strings.Cut(rest, "</"+tag+">")
		if !ok {
			t.Fatalf("no <%s> in the page", tag)
		}
		sum := sha256.Sum256([]byte(body))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	if !strings.Contains(p.csp, "style-src "+inline("style")+";") || !strings.Contains(p.csp, "script-src "+inline("script")+";") ||
		!strings.HasPrefix(p.csp, "default-src 'none'; connect-src 'self';") {
		t.Errorf("CSP %q does not allow exactly the inline style and script", p.csp)
	}
	zr, err := gzip.NewReader(bytes.NewReader(p.gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(raw, p.raw) {
		t.Fatalf("gzipped page differs (%v)", err)
	}
	t.Logf("page: %d bytes, %d gzipped", len(p.raw), len(p.gz))
}
