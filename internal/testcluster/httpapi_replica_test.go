package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/poll"
)

type httpAnswer struct {
	status int
	body   string
	header http.Header
}

func httpGet(t *testing.T, url string) httpAnswer {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpAnswer{resp.StatusCode, string(b), resp.Header}
}

type metricsDoc struct {
	Cluster     string `json:"cluster"`
	Role        string `json:"role"`
	Host        string `json:"host"`
	Port        int    `json:"port"`
	TimestampNS int64  `json:"timestamp_ns"`
	Entities    []struct {
		Type       string            `json:"type"`
		ID         string            `json:"id"`
		Attributes map[string]string `json:"attributes"`
		Metrics    []map[string]any  `json:"metrics"`
	} `json:"entities"`
}

// metricSum adds up a metric's values over the entities of one type on the given servers.
func metricSum(t *testing.T, addrs []string, typ, name string) int64 {
	t.Helper()
	var n int64
	for _, a := range addrs {
		ans := httpGet(t, "http://"+a+"/metrics?types="+typ+"&metrics="+name)
		if ans.status != 200 {
			t.Fatalf("%s /metrics: %d %s", a, ans.status, ans.body)
		}
		var doc metricsDoc
		if err := json.Unmarshal([]byte(ans.body), &doc); err != nil {
			t.Fatalf("%s /metrics: %v", a, err)
		}
		for _, e := range doc.Entities {
			for _, m := range e.Metrics {
				v, _ := m["value"].(float64)
				n += int64(v)
			}
		}
	}
	return n
}

func TestReplicaHTTPEndpoints(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	app := c.CreateTable(t, "temp", 8)
	tbl := c.OpenTable(t, "temp")
	for i := range 20 {
		if err := tbl.Set(t.Context(), []byte(fmt.Sprint("h", i)), []byte("s"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	r := "http://" + c.ReplicaAddrs()[0]
	id := fmt.Sprint(app)
	for _, tc := range []struct {
		path   string
		status int
		body   string // exact, or a prefix when it ends in "*"
	}{
		{"/version", 200, `{"Version":*`},
		{"/recentStartTime", 200, `{"RecentStartTime":"20*`},
		{"/config?name=rocksdb_slow_query_threshold_ns", 200, `{"name":"rocksdb_slow_query_threshold_ns","section":"pegasus.server","type":"FV_UINT64","tags":"flag_tag::FT_MUTABLE",*`},
		{"/config?name=raft_tick_ms", 200, `{"name":"raft_tick_ms","section":"replication","type":"FV_UINT32","tags":"",*`},
		{"/config", 400, "name shouldn't be empty"},
		{"/config?name=nope", 200, "ERR_OBJECT_NOT_FOUND: 'nope' is not found"},
		{"/configs", 200, `{"advertise":{"name":"advertise",*`},
		{"/updateConfig?raft_tick_ms=5", 200, `{"update_status":"ERR_INVALID_PARAMETERS: raft_tick_ms is not mutable"}` + "\n"},
		{"/updateConfig?nope=5", 200, `{"update_status":"ERR_OBJECT_NOT_FOUND: nope is not found"}` + "\n"},
		{"/metrics?detail=true", 200, "{\n    \"cluster\": *"},
		{"/metrics?bogus=1", 400, "{\n    \"error_message\": \"unknown field bogus=1\"\n}"},
		{"/pprof/symbol", 200, "num_symbols: 1\n"},
		{"/pprof/heap", 200, "\x1f\x8b*"},
		{"/pprof/growth", 200, "\x1f\x8b*"},
		{"/pprof/profile?seconds=1", 200, "\x1f\x8b*"},
		{"/pprof/cmdline", 200, "*"},
		{"/replica/data_version", 400, "app_id should not be empty"},
		{"/replica/data_version?app_id=x1", 400, "invalid app_id=x1"},
		{"/replica/data_version?app_id=-1", 400, "invalid app_id=-1"},
		{"/replica/data_version?app_id=99", 404, "app_id=99 not found"},
		{"/replica/data_version?app_id=" + id, 200, `{"*`},
		{"/replica/manual_compaction", 400, "app_id should not be empty"},
		{"/replica/manual_compaction?app_id=99", 200, `{"status":{"finished":0,"idle":0,"queuing":0,"running":0}}`},
		{"/replica/manual_compaction?app_id=" + id, 200, `{"status":{"finished":0,"idle":*`},
		{"/replica/duplication?appid=" + id, 404, "no duplication assigned for app [appid=" + id + "]"},
		{"/replica/duplication", 400, "appid should not be empty"},
		{"/replica/duplication?appid=x", 400, "invalid appid=x"},
		{"/replica/duplication?appid=99", 404, "no primary for app [appid=99]"},
		{"/replica/nope", 404, `service not found for "replica/nope"`},
		{"/replica/data_version?app_id=1&app_id=2", 400, "failed to parse request: ERR_INVALID_PARAMETERS: duplicate parameter: app_id"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			ans := httpGet(t, r+tc.path)
			ok := ans.body == tc.body
			if p, wild := strings.CutSuffix(tc.body, "*"); wild {
				ok = strings.HasPrefix(ans.body, p)
			}
			if ans.status != tc.status || !ok {
				t.Errorf("GET %s = %d %.200q, want %d %q", tc.path, ans.status, ans.body, tc.status, tc.body)
			}
			if ct := ans.header.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("GET %s: Content-Type %q", tc.path, ct)
			}
		})
	}

	// "/" lists every endpoint of a replica server.
	var list map[string]string
	if err := json.Unmarshal([]byte(httpGet(t, r+"/").body), &list); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/config", "/configs", "/updateConfig", "/version", "/recentStartTime", "/metrics",
		"/pprof/heap", "/pprof/profile", "/pprof/symbol", "/pprof/cmdline", "/pprof/growth",
		"/replica/data_version", "/replica/duplication", "/replica/manual_compaction"} {
		if list[p] == "" {
			t.Errorf("/ does not list %s", p)
		}
	}

	// data_version answers for every replica of the table on the server; together the
	// servers hold all 8 partitions.
	seen := map[string]bool{}
	for _, a := range c.ReplicaAddrs() {
		ans := httpGet(t, "http://"+a+"/replica/data_version?app_id="+id)
		var dv map[string]struct {
			DataVersion string `json:"data_version"`
		}
		if ans.status == 404 {
			continue
		}
		if err := json.Unmarshal([]byte(ans.body), &dv); err != nil {
			t.Fatal(err)
		}
		for pidx, v := range dv {
			if v.DataVersion != "1" {
				t.Errorf("%s partition %s: data_version %q", a, pidx, v.DataVersion)
			}
			seen[pidx] = true
		}
	}
	if len(seen) != 8 {
		t.Errorf("data_version covers partitions %v", seen)
	}

	// /metrics: per-replica and per-table entities with the writes made above.
	if n := metricSum(t, c.ReplicaAddrs(), "replica", "put_requests"); n < 20 {
		t.Errorf("put_requests over the replicas = %d, want >= 20", n)
	}
	if n := metricSum(t, c.ReplicaAddrs(), "table", "put_requests"); n < 20 {
		t.Errorf("put_requests over the tables = %d, want >= 20", n)
	}
	if n := metricSum(t, c.ReplicaAddrs(), "server", "total_replicas"); n != 8 {
		t.Errorf("total_replicas = %d, want 8", n)
	}
	var doc metricsDoc
	if err := json.Unmarshal([]byte(httpGet(t, r+"/metrics?detail=true").body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Role != "replica" || doc.Port == 0 || doc.TimestampNS == 0 || len(doc.Entities) == 0 {
		t.Fatalf("metrics top level %+v", doc)
	}
	for _, e := range doc.Entities {
		if e.Type == "replica" && (e.Attributes["table_id"] != id || e.ID != "replica@"+id+"."+e.Attributes["partition_id"]) {
			t.Errorf("replica entity %s %v", e.ID, e.Attributes)
		}
		for _, m := range e.Metrics {
			if k := m["type"]; k != "Counter" && k != "Gauge" && k != "Percentile" {
				t.Errorf("metric %v: type %v", m["name"], k)
			}
		}
	}
}

// TestPrometheusCounterRises scrapes /metrics/prometheus, which must parse, before and
// after traffic.
func TestPrometheusCounterRises(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	c.CreateTable(t, "temp", 4)
	tbl := c.OpenTable(t, "temp")
	scrape := func() int64 {
		var n int64
		for _, a := range c.ReplicaAddrs() {
			resp, err := http.Get("http://" + a + "/metrics/prometheus")
			if err != nil {
				t.Fatal(err)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
				t.Fatalf("content type %q", ct)
			}
			p := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := p.TextToMetricFamilies(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s: prometheus output does not parse: %v", a, err)
			}
			if fams["pegasus_server_rpc_connections_total"] == nil || fams["pegasus_replica_get_latency_ns"] == nil {
				t.Fatalf("%s: families missing", a)
			}
			if f := fams["pegasus_replica_put_requests_total"]; f != nil {
				for _, m := range f.Metric {
					n += int64(m.GetCounter().GetValue())
				}
			}
		}
		return n
	}
	before := scrape()
	for i := range 10 {
		if err := tbl.Set(t.Context(), []byte(fmt.Sprint("k", i)), []byte("s"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if after := scrape(); after < before+10 {
		t.Fatalf("put_requests went from %d to %d after 10 sets", before, after)
	}
}

// TestUpdateConfigSlowQueryThreshold changes the slow-request threshold live: at 1 ns every
// request is slow, at 0 none is counted.
func TestUpdateConfigSlowQueryThreshold(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	c.CreateTable(t, "temp", 4)
	tbl := c.OpenTable(t, "temp")
	set := func(v string) {
		for _, a := range c.ReplicaAddrs() {
			ans := httpGet(t, "http://"+a+"/updateConfig?rocksdb_slow_query_threshold_ns="+v)
			if ans.status != 200 || ans.body != `{"update_status":"ERR_OK"}`+"\n" {
				t.Fatalf("updateConfig: %d %s", ans.status, ans.body)
			}
			if got := httpGet(t, "http://"+a+"/config?name=rocksdb_slow_query_threshold_ns"); !strings.Contains(got.body, `"value":"`+v+`"`) {
				t.Fatalf("config after update: %s", got.body)
			}
		}
	}
	gets := func(n int) {
		for i := range n {
			if _, err := tbl.Get(t.Context(), []byte(fmt.Sprint("k", i)), []byte("s")); err != nil {
				t.Fatal(err)
			}
		}
	}
	slow := func() int64 { return metricSum(t, c.ReplicaAddrs(), "server", "slow_requests") }
	set("0")
	base := slow()
	gets(10)
	if n := slow(); n != base {
		t.Fatalf("slow requests counted with the threshold off: %d -> %d", base, n)
	}
	set("1")
	gets(10)
	if n := slow(); n < base+10 {
		t.Fatalf("threshold 1ns: slow requests %d -> %d after 10 gets", base, n)
	}
	base = slow()
	set("0")
	gets(10)
	if n := slow(); n != base {
		t.Fatalf("threshold back off: slow requests %d -> %d", base, n)
	}
}

// TestManualCompactionByEnv asks for a manual compaction through the table env Pegasus uses
// and checks that the replicas compact (the store shrinks after deletes) and report it.
func TestManualCompactionByEnv(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	app := c.CreateTable(t, "temp", 1) // one partition, so the data outgrows its memtable
	tbl := c.OpenTable(t, "temp")
	fillAndDelete(t, tbl)
	before := metricSum(t, c.ReplicaAddrs(), "table", "rdb_total_sst_bytes")
	if before < 1<<20 {
		t.Fatalf("only %d bytes of sstables before the compaction", before)
	}
	adm := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs(), Timeout: 20 * time.Second})
	defer adm.Close()
	if err := adm.SetAppEnvs(t.Context(), "temp", map[string]string{"manual_compact.once.trigger_time": fmt.Sprint(time.Now().Unix())}); err != nil {
		t.Fatal(err)
	}
	waitCompacted(t, c, app, 1)
	if after := metricSum(t, c.ReplicaAddrs(), "table", "rdb_total_sst_bytes"); after >= before/10 {
		t.Fatalf("store size %d before the compaction, %d after", before, after)
	}
}

// fillAndDelete writes about 8 MiB of random bytes (more than a memtable, so most of it reaches sstables)
// and then deletes it all.
func fillAndDelete(t *testing.T, tbl pegasus.TableConnector) {
	t.Helper()
	var sks, vs [][]byte
	for s := range 100 {
		v := make([]byte, 4096)
		for i := range v {
			v[i] = byte(rand.Uint32()) // incompressible
		}
		sks = append(sks, []byte(fmt.Sprint("s", s)))
		vs = append(vs, v)
	}
	for _, del := range []bool{false, true} {
		for h := range 20 {
			hk := []byte(fmt.Sprint("hash", h))
			var err error
			if del {
				err = tbl.MultiDel(t.Context(), hk, sks)
			} else {
				err = tbl.MultiSet(t.Context(), hk, sks, vs)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// waitCompacted waits until every one of the table's partitions reports a finished manual
// compaction on /replica/manual_compaction.
func waitCompacted(t *testing.T, c *Cluster, app int32, partitions int) {
	t.Helper()
	poll.UntilOK(t, "manual compaction finished", func(ctx context.Context) (bool, error) {
		finished, total := 0, 0
		for _, a := range c.ReplicaAddrs() {
			ans := httpGet(t, fmt.Sprintf("http://%s/replica/manual_compaction?app_id=%d", a, app))
			var st struct {
				Status map[string]int `json:"status"`
			}
			if err := json.Unmarshal([]byte(ans.body), &st); err != nil {
				return false, fmt.Errorf("%s: %v", ans.body, err)
			}
			for k, n := range st.Status {
				total += n
				if k == "finished" {
					finished += n
				}
			}
		}
		if total != partitions {
			return false, fmt.Errorf("manual_compaction counts %d replicas, want %d", total, partitions)
		}
		return finished == partitions, nil
	})
}
