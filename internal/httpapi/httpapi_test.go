package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/metric"
)

func testServer(t *testing.T) (*httptest.Server, *config.Value[uint64]) {
	reg := config.NewRegistry()
	th := config.Define(reg, config.Spec[uint64]{Section: "pegasus.server", Name: "slow_ns", Default: 100, Mutable: true, Description: "slow"})
	config.Define(reg, config.Spec[string]{Section: "network", Name: "listen", Default: "127.0.0.1:1", Description: "where"})
	config.Define(reg, config.Spec[float64]{Section: "core", Name: "ratio", Default: 0.5})
	m := New(Options{Role: "replica", Version: "1.2.3", StartTime: time.Date(2024, 5, 1, 10, 20, 30, 0, time.Local), Settings: reg, Port: 34801,
		Metrics: func(context.Context) []metric.Entity {
			return []metric.Entity{
				{Type: "server", ID: "server", Metrics: []metric.Metric{metric.GaugeOf("total_replicas", "Replicas", "replicas", 24)}},
				{Type: "replica", ID: "replica@2.3", Attrs: [][2]string{{"table_id", "2"}, {"partition_id", "3"}}, Metrics: []metric.Metric{
					metric.CounterOf("get_requests", "Requests", "gets", 1024),
					{Kind: metric.Percentile, Name: "get_latency_ns", Unit: "NanoSeconds", Desc: "get latency", P: [5]int64{1, 2, 3, 4, 5}},
				}},
				{Type: "replica", ID: "replica@2.4", Attrs: [][2]string{{"table_id", "2"}, {"partition_id", "4"}}, Metrics: []metric.Metric{
					metric.CounterOf("get_requests", "Requests", "gets", 7),
				}},
			}
		}})
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return srv, th
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestBuiltins(t *testing.T) {
	srv, th := testServer(t)
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/version", 200, `{"Version":"1.2.3","GitCommit":"` + GitCommit() + "\"}\n"},
		{"/recentStartTime", 200, `{"RecentStartTime":"2024-05-01 10:20:30"}` + "\n"},
		{"/config?name=slow_ns", 200, `{"name":"slow_ns","section":"pegasus.server","type":"FV_UINT64","tags":"flag_tag::FT_MUTABLE","description":"slow","value":"100"}` + "\n"},
		{"/config?name=ratio", 200, `{"name":"ratio","section":"core","type":"FV_DOUBLE","tags":"","description":"","value":"0.50"}` + "\n"},
		{"/config", 400, "name shouldn't be empty"},
		{"/config?name=", 400, "name shouldn't be empty"},
		{"/config?name=slow_ns&x=1", 400, ""},
		{"/config?name=nope", 200, "ERR_OBJECT_NOT_FOUND: 'nope' is not found"},
		{"/configs?x", 400, ""},
		{"/updateConfig", 200, `{"update_status":"ERR_INVALID_PARAMETERS: there should be exactly one config to be updated once"}` + "\n"},
		{"/updateConfig?a=1&b=2", 200, `{"update_status":"ERR_INVALID_PARAMETERS: there should be exactly one config to be updated once"}` + "\n"},
		{"/updateConfig?nope=1", 200, `{"update_status":"ERR_OBJECT_NOT_FOUND: nope is not found"}` + "\n"},
		{"/updateConfig?ratio=1", 200, `{"update_status":"ERR_INVALID_PARAMETERS: ratio is not mutable"}` + "\n"},
		{"/updateConfig?slow_ns=-5", 200, `{"update_status":"ERR_INVALID_PARAMETERS: -5 is invalid"}` + "\n"},
		{"/updateConfig?slow_ns=0x20", 200, `{"update_status":"ERR_OK"}` + "\n"},
		{"//meta/x/", 404, `service not found for "meta/x"`},
		{"/version?a=1&a=2", 400, "failed to parse request: ERR_INVALID_PARAMETERS: duplicate parameter: a"},
		{"/version?a&a", 200, `{"Version":"1.2.3","GitCommit":"` + GitCommit() + "\"}\n"},
		{"/version?a=%zz", 400, "failed to parse request: ERR_INVALID_PARAMETERS: invalid URL escape \"%zz\""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			status, body, h := get(t, srv.URL+tc.path)
			if status != tc.status || body != tc.body {
				t.Errorf("GET %s = %d %q, want %d %q", tc.path, status, body, tc.status, tc.body)
			}
			if ct := h.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("GET %s: Content-Type %q", tc.path, ct)
			}
			if h.Get("Date") != "" || h.Get("Content-Length") == "" {
				t.Errorf("GET %s: headers %v", tc.path, h)
			}
		})
	}
	if th.Get() != 32 {
		t.Fatalf("updateConfig did not change the value: %d", th.Get())
	}

	_, body, _ := get(t, srv.URL+"/configs")
	var all map[string]map[string]string
	if err := json.Unmarshal([]byte(body), &all); err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all["slow_ns"]["value"] != "32" || all["listen"]["section"] != "network" || all["listen"]["name"] != "listen" {
		t.Fatalf("configs: %s", body)
	}

	_, body, _ = get(t, srv.URL+"/")
	var list map[string]string
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/config", "/configs", "/updateConfig", "/version", "/recentStartTime", "/metrics", "/pprof/heap", "/pprof/profile", "/pprof/symbol", "/pprof/cmdline", "/pprof/growth"} {
		if list[p] == "" {
			t.Errorf("/ does not list %s: %s", p, body)
		}
	}
	if !strings.HasPrefix(list["/config"], "name=<config_name>. ") || !strings.HasPrefix(list["/metrics"], "[with_metric_fields=") {
		t.Errorf("help texts: %q %q", list["/config"], list["/metrics"])
	}
	if !strings.HasPrefix(body, `{"/":`) {
		t.Errorf("/ not sorted: %s", body)
	}
}

type metricsBody struct {
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

func TestMetricsJSON(t *testing.T) {
	srv, _ := testServer(t)
	status, body, _ := get(t, srv.URL+"/metrics?detail=true")
	if status != 200 {
		t.Fatalf("status %d %s", status, body)
	}
	if !strings.Contains(body, "\n    \"cluster\": \"unknown\",\n") || strings.HasSuffix(body, "\n") {
		t.Fatalf("not pretty-printed with 4 spaces: %s", body)
	}
	var mb metricsBody
	if err := json.Unmarshal([]byte(body), &mb); err != nil {
		t.Fatal(err)
	}
	if mb.Role != "replica" || mb.Port != 34801 || mb.TimestampNS == 0 || mb.Host == "" || len(mb.Entities) != 3 {
		t.Fatalf("top level: %+v", mb)
	}
	r := mb.Entities[1]
	if r.Type != "replica" || r.ID != "replica@2.3" || r.Attributes["table_id"] != "2" || r.Attributes["partition_id"] != "3" {
		t.Fatalf("entity %+v", r)
	}
	if m := r.Metrics[0]; m["type"] != "Counter" || m["name"] != "get_requests" || m["unit"] != "Requests" || m["desc"] != "gets" || m["value"] != 1024.0 {
		t.Fatalf("counter %v", m)
	}
	if m := r.Metrics[1]; m["type"] != "Percentile" || m["p50"] != 1.0 || m["p999"] != 5.0 || m["value"] != nil {
		t.Fatalf("percentile %v", m)
	}

	// The hotspot detector's query, with its escaped commas and empty lists.
	_, body, _ = get(t, srv.URL+"/metrics?attributes=&ids=&metrics=get_requests%2Cput_requests&types=replica&with_metric_fields=name%2Cvalue")
	mb = metricsBody{}
	if err := json.Unmarshal([]byte(body), &mb); err != nil {
		t.Fatal(err)
	}
	if len(mb.Entities) != 2 || len(mb.Entities[0].Metrics) != 1 || len(mb.Entities[0].Metrics[0]) != 2 {
		t.Fatalf("filtered: %s", body)
	}

	for _, tc := range []struct{ query, want string }{
		{"?ids=replica@2.4", `"id": "replica@2.4"`},
		{"?attributes=partition_id,4,table_id,9", `"id": "replica@2.4"`},
		{"?metrics=nothing", `"entities": []`},
		{"?with_metric_fields=bogus&types=server", `"metrics": [
                {}
            ]`},
		{"", `{
                    "name": "total_replicas",
                    "value": 24
                }`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			status, body, _ := get(t, srv.URL+"/metrics"+tc.query)
			if status != 200 || !strings.Contains(body, tc.want) {
				t.Errorf("/metrics%s = %d %s, want it to contain %s", tc.query, status, body, tc.want)
			}
		})
	}
	for _, tc := range []struct{ query, msg string }{
		{"?foo=bar", "unknown field foo=bar"},
		{"?attributes=a", "the number of arguments for attributes should be even, since each attribute name always pairs with a value"},
		{"?detail", "the value of detail should be a boolean value, i.e. true or false"},
		{"?detail=yes", "the value of detail should be a boolean value, i.e. true or false"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			status, body, _ := get(t, srv.URL+"/metrics"+tc.query)
			if status != 400 || body != "{\n    \"error_message\": \""+tc.msg+"\"\n}" {
				t.Errorf("/metrics%s = %d %q", tc.query, status, body)
			}
		})
	}
	resp, err := http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "please use 'GET' method while querying for metrics") {
		t.Fatalf("POST /metrics = %d %s", resp.StatusCode, b)
	}
}

func TestPrometheus(t *testing.T) {
	srv, _ := testServer(t)
	resp, err := http.Get(srv.URL + "/metrics/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	f := fams["pegasus_replica_get_requests_total"]
	if f == nil || len(f.Metric) != 2 || f.GetType().String() != "COUNTER" {
		t.Fatalf("get_requests family: %v", f)
	}
	if lat := fams["pegasus_replica_get_latency_ns"]; lat == nil || len(lat.Metric) != 5 {
		t.Fatalf("latency family: %v", lat)
	}
	if g := fams["pegasus_server_total_replicas"]; g == nil || g.Metric[0].GetGauge().GetValue() != 24 {
		t.Fatalf("gauge: %v", g)
	}
}

func TestPprof(t *testing.T) {
	srv, _ := testServer(t)
	for _, p := range []string{"/pprof/heap", "/pprof/growth", "/pprof/goroutine", "/pprof/profile?seconds=1"} {
		status, body, _ := get(t, srv.URL+p)
		// Go's profiles are gzipped protobufs.
		if status != 200 || !strings.HasPrefix(body, "\x1f\x8b") {
			t.Errorf("GET %s = %d, %d bytes", p, status, len(body))
		}
	}
	status, body, _ := get(t, srv.URL+"/pprof/symbol")
	if status != 200 || body != "num_symbols: 1\n" {
		t.Errorf("symbol = %d %q", status, body)
	}
	status, body, _ = get(t, srv.URL+"/pprof/cmdline")
	if status != 200 || !strings.Contains(body, "httpapi") {
		t.Errorf("cmdline = %d %q", status, body)
	}
}
