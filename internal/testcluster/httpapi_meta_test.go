package testcluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/admin"
)

func httpPost(t *testing.T, url, body string) httpAnswer {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpAnswer{resp.StatusCode, string(b), resp.Header}
}

func TestMetaHTTPEndpoints(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	app := c.CreateTable(t, "temp", 8)
	m := "http://" + c.MetaAddrs()[0]
	id := fmt.Sprint(app)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string // exact, or a prefix when it ends in "*"
	}{
		{"GET", "/version", "", 200, `{"Version":*`},
		{"GET", "/recentStartTime", "", 200, `{"RecentStartTime":"*`},
		{"GET", "/config?name=node_grace_ms", "", 200, `{"name":"node_grace_ms","section":"meta_server","type":"FV_UINT32","tags":"",*`},
		{"GET", "/configs", "", 200, `{"advertise":{"name":"advertise",*`},
		{"GET", "/updateConfig?node_grace_ms=1", "", 200, `{"update_status":"ERR_INVALID_PARAMETERS: node_grace_ms is not mutable"}` + "\n"},
		{"GET", "/metrics?types=server&metrics=tables", "", 200, "{\n*"},
		{"GET", "/pprof/heap", "", 200, "\x1f\x8b*"},
		{"GET", "/pprof/symbol", "", 200, "num_symbols: 1\n"},
		{"GET", "/meta/cluster", "", 200, `{"meta_servers":"` + c.MetaAddrs()[0] + `","primary_meta_server":"` + c.MetaAddrs()[0] + `",*`},
		{"GET", "/meta/apps", "", 200, `{"general_info":{"` + id + `":{"app_id":"` + id + `","status":"AVAILABLE","app_name":"temp","app_type":"pegasus","partition_count":"8","replica_count":"1","is_stateful":"true","create_time":"20*`},
		{"GET", "/meta/apps?detail", "", 200, `{"general_info":*"healthy_info":{"` + id + `":{"app_id":"` + id + `","app_name":"temp","partition_count":"8","fully_healthy":"8","unhealthy":"0","write_unhealthy":"0","read_unhealthy":"0"}},"summary":{"total_app_count":"1","fully_healthy_app_count":"1",*`},
		{"GET", "/meta/apps?bogus=1", "", 400, ""},
		{"GET", "/meta/app?name=temp", "", 200, `{"general":{"app_name":"temp","app_id":"` + id + `","partition_count":"8","max_replica_count":"1"}}` + "\n"},
		{"GET", "/meta/app?name=temp&detail", "", 200, `{"general":*"replicas":{"0":{"pidx":"0","ballot":"*`},
		{"GET", "/meta/app", "", 400, "app name shouldn't be empty"},
		{"GET", "/meta/app?name=nope", "", 404, `table not found: "nope"`},
		{"GET", "/meta/app?name=a&name=b", "", 400, "failed to parse request: ERR_INVALID_PARAMETERS: duplicate parameter: name"},
		{"GET", "/meta/nodes", "", 200, `{"details":{"127.0.0.1:*":{"address":"127.0.0.1:*`},
		{"GET", "/meta/nodes?detail", "", 200, `{"details":{"127.0.0.1:*`},
		{"GET", "/meta/app_envs", "", 400, "app name shouldn't be empty"},
		{"GET", "/meta/app_envs?name=nope", "", 200, "{}\n"},
		{"GET", "/meta/app/duplication?name=temp", "", 200, "null"},
		{"GET", "/meta/app/duplication", "", 400, "name should not be empty"},
		{"GET", "/meta/app/duplication?name=nope", "", 404, "ERR_APP_NOT_EXIST"},
		{"GET", "/meta/app/duplication?name=", "", 404, "ERR_APP_NOT_EXIST"},
		{"GET", "/meta/app/query_bulk_load?name=temp", "", 404, "bulk load is not enabled"},
		{"POST", "/meta/app/start_bulk_load", "{}", 404, "bulk load is not enabled"},
		{"GET", "/meta/backup_policy", "", 404, "cold_backup_disabled"},
		{"POST", "/meta/app/start_compaction", "", 400, "invalid request structure"},
		{"POST", "/meta/app/start_compaction", `{"app_name":"temp","type":"once","target_level":1.5,"bottommost_level_compaction":"skip","max_concurrent_running_count":0,"trigger_time":""}`, 400, "invalid request structure"},
		{"POST", "/meta/app/start_compaction", `{"app_name":"","type":"once"}`, 400, "app_name should not be empty"},
		{"POST", "/meta/app/start_compaction", `{"app_name":"temp","type":"daily"}`, 400, "type should ony be 'once' or 'periodic'"},
		{"POST", "/meta/app/start_compaction", `{"app_name":"temp","type":"once","target_level":-2}`, 400, "target_level should be >= -1"},
		{"POST", "/meta/app/start_compaction", `{"app_name":"temp","type":"once","target_level":-1,"bottommost_level_compaction":"x"}`, 400, "bottommost_level_compaction should ony be 'skip' or 'force'"},
		{"POST", "/meta/app/start_compaction", `{"app_name":"temp","type":"periodic","target_level":-1,"bottommost_level_compaction":"skip"}`, 400, "trigger_time should not be empty when type is periodic"},
		{"POST", "/meta/app/start_compaction", `{"app_name":"nope","type":"once","target_level":-1,"bottommost_level_compaction":"skip","max_concurrent_running_count":0,"trigger_time":""}`, 200, `{"error":"ERR_APP_NOT_EXIST","hint_message":"app cannot be found"}` + "\n"},
		{"POST", "/meta/app/usage_scenario", `{"app_name":"temp","scenario":"fast"}`, 400, "scenario should ony be 'normal' or 'bulk_load'"},
		{"POST", "/meta/app/usage_scenario", `{"app_name":"temp","scenario":"bulk_load"}`, 200, `{"error":"ERR_OK","hint_message":""}` + "\n"},
		{"GET", "/meta/app_envs?name=temp", "", 200, `{"rocksdb.usage_scenario":"bulk_load"}` + "\n"},
		{"GET", "/meta/nope", "", 404, `service not found for "meta/nope"`},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var ans httpAnswer
			if tc.method == "POST" {
				ans = httpPost(t, m+tc.path, tc.body)
			} else {
				ans = httpGet(t, m+tc.path)
			}
			ok := ans.body == tc.want
			if strings.Contains(tc.want, "*") {
				ok = globMatch(tc.want, ans.body)
			}
			if ans.status != tc.status || !ok {
				t.Errorf("%s %s = %d %.300q, want %d %q", tc.method, tc.path, ans.status, ans.body, tc.status, tc.want)
			}
			if ct := ans.header.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, ct)
			}
		})
	}
	var nodes struct {
		Details map[string]map[string]string `json:"details"`
		Summary map[string]string            `json:"summary"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, m+"/meta/nodes?detail").body), &nodes); err != nil {
		t.Fatal(err)
	}
	total := 0
	for addr, n := range nodes.Details {
		var k int
		fmt.Sscan(n["replica_count"], &k)
		total += k
		if n["address"] != addr || n["status"] != "ALIVE" {
			t.Errorf("node %s: %v", addr, n)
		}
	}
	if total != 8 || nodes.Summary["alive_node_count"] != "3" {
		t.Errorf("nodes: %+v", nodes)
	}
	if n := metricSum(t, c.MetaAddrs(), "server", "alive_nodes"); n != 3 {
		t.Errorf("alive_nodes = %d", n)
	}
	if n := metricSum(t, c.MetaAddrs(), "server", "tables"); n != 1 {
		t.Errorf("tables = %d", n)
	}
}

// globMatch matches s against a pattern where '*' stands for any text.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1:] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// TestStartCompactionCompacts asks the meta for a manual compaction over HTTP: the store
// shrinks after deletes, and /replica/manual_compaction shows it finished.
func TestStartCompactionCompacts(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	app := c.CreateTable(t, "temp", 1)
	tbl := c.OpenTable(t, "temp")
	fillAndDelete(t, tbl)
	before := metricSum(t, c.ReplicaAddrs(), "table", "rdb_total_sst_bytes")
	if before < 1<<20 {
		t.Fatalf("only %d bytes of sstables before the compaction", before)
	}
	ans := httpPost(t, "http://"+c.MetaAddrs()[0]+"/meta/app/start_compaction",
		`{"app_name":"temp","type":"once","target_level":-1,"bottommost_level_compaction":"force","max_concurrent_running_count":0,"trigger_time":""}`)
	if ans.status != 200 || ans.body != `{"error":"ERR_OK","hint_message":""}`+"\n" {
		t.Fatalf("start_compaction: %d %s", ans.status, ans.body)
	}
	adm := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs()})
	defer adm.Close()
	envs, err := adm.GetAppEnvs(t.Context(), "temp")
	if err != nil || envs["manual_compact.once.trigger_time"] == "" || envs["manual_compact.once.target_level"] != "-1" {
		t.Fatalf("envs %v %v", envs, err)
	}
	waitCompacted(t, c, app, 1)
	if after := metricSum(t, c.ReplicaAddrs(), "table", "rdb_total_sst_bytes"); after >= before/10 {
		t.Fatalf("sstables: %d bytes before the compaction, %d after", before, after)
	}
}
