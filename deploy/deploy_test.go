// Package deploy_test checks the monitoring files of deploy/ against the metrics the servers
// really export.
package deploy_test

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gopegasus/pegasus/internal/testcluster"
)

// families maps each exported metric family to the label names its samples carry.
type families map[string]map[string]bool

// scrape reads /metrics/prometheus (or path) from every server of c.
func scrape(t *testing.T, c *testcluster.Cluster, path string) families {
	t.Helper()
	out := families{}
	for _, addr := range slices.Concat(c.MetaAddrs(), c.ReplicaAddrs()) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s%s: %d, %v", addr, path, resp.StatusCode, err)
		}
		for name, f := range fams {
			if out[name] == nil {
				out[name] = map[string]bool{}
			}
			for _, m := range f.Metric {
				for _, l := range m.Label {
					out[name][l.GetName()] = true
				}
			}
		}
	}
	return out
}

// query is one PromQL expression of the dashboard and where it is.
type query struct{ where, expr string }

// dashboardQueries collects every query of a Grafana dashboard: panels' targets (rows
// included, at any depth) and the template variables' queries.
func dashboardQueries(t *testing.T, path string) []query {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []query
	type panel struct {
		Title   string            `json:"title"`
		Type    string            `json:"type"`
		Panels  []json.RawMessage `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	}
	taken := map[[2]int]string{}
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, r := range ps {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: panel: %v", path, err)
			}
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("panel %q: bad grid position %+v", p.Title, g)
			}
			for x := g.X; x < g.X+g.W; x++ {
				for y := g.Y; y < g.Y+g.H; y++ {
					if other, ok := taken[[2]int{x, y}]; ok {
						t.Fatalf("panels %q and %q overlap", other, p.Title)
					}
					taken[[2]int{x, y}] = p.Title
				}
			}
			if p.Type != "row" {
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: want the ${datasource} variable as its data source", p.Title)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
			}
			for i, tg := range p.Targets {
				out = append(out, query{where: "panel " + strconv.Quote(p.Title) + " target " + string(rune('A'+i)), expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if err := json.Unmarshal(v.Query, &s); err != nil {
				t.Fatalf("variable %s: query %s", v.Name, v.Query)
			}
			q.Query = s
		}
		out = append(out, query{where: "variable " + v.Name, expr: q.Query})
	}
	return out
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promMatchers = regexp.MustCompile(`\{([^}]*)\}`)
	promMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	labelValues  = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// promFunctions are the PromQL functions and aggregations a query may call.
var promFunctions = map[string]bool{
	"sum": true, "max": true, "min": true, "avg": true, "count": true, "group": true, "topk": true, "bottomk": true,
	"quantile": true, "stddev": true, "count_values": true, "rate": true, "irate": true, "increase": true, "delta": true,
	"deriv": true, "abs": true, "ceil": true, "floor": true, "round": true, "clamp_min": true, "clamp_max": true,
	"sort": true, "sort_desc": true, "absent": true, "vector": true, "scalar": true, "time": true,
	"histogram_quantile": true, "label_replace": true, "avg_over_time": true, "max_over_time": true,
	"min_over_time": true, "sum_over_time": true, "last_over_time": true,
}

// promKeywords are the PromQL words that are neither functions nor metric names.
var promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true}

// promRefs returns the metric names and the label names a PromQL query (or a Grafana
// label_values() variable query) uses. Unknown functions are errors: a typo in a function
// name must not pass for a metric name.
func promRefs(q string) (metrics, labels []string, unknown []string) {
	if m := labelValues.FindStringSubmatch(q); m != nil {
		metrics, labels, unknown = promRefs(m[1])
		return metrics, append(labels, m[2]), unknown
	}
	q = promStrings.ReplaceAllString(q, `""`)
	q = promRanges.ReplaceAllString(q, "")
	for _, m := range promMatchers.FindAllStringSubmatch(q, -1) {
		for _, l := range promMatcher.FindAllStringSubmatch(m[1], -1) {
			labels = append(labels, l[1])
		}
	}
	q = promMatchers.ReplaceAllString(q, " ")
	for _, m := range promGrouping.FindAllStringSubmatch(q, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
	}
	q = promGrouping.ReplaceAllString(q, " ")
	for _, loc := range promIdent.FindAllStringIndex(q, -1) {
		word := q[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(q[loc[0]-1:loc[0]], "0123456789.$") {
			continue // part of a number (1e3, 5m) or a Grafana variable
		}
		called := strings.HasPrefix(strings.TrimSpace(q[loc[1]:]), "(")
		switch {
		case promKeywords[word]:
		case called && promFunctions[word]:
		case called:
			unknown = append(unknown, word)
		default:
			metrics = append(metrics, word)
		}
	}
	return metrics, labels, unknown
}

func TestPromRefs(t *testing.T) {
	for _, tc := range []struct {
		q                string
		metrics, labels  []string
		unknownFunctions []string
	}{
		{`max(pegasus_server_alive_nodes)`, []string{"pegasus_server_alive_nodes"}, nil, nil},
		{`sum by (instance, table_id) (rate(pegasus_replica_get_requests_total{table_id=~"$table_id",quantile!="0.5"}[$__rate_interval])) * 60`,
			[]string{"pegasus_replica_get_requests_total"}, []string{"table_id", "quantile", "instance", "table_id"}, nil},
		{`a_total + b offset 5m and on (x) c > bool 1e3`, []string{"a_total", "b", "c"}, []string{"x"}, nil},
		{`sume(rate(x[1m]))`, []string{"x"}, nil, []string{"sume"}},
		{`label_values(pegasus_table_replicas, table_id)`, []string{"pegasus_table_replicas"}, []string{"table_id"}, nil},
		{`max(m{l="a{b}"})`, []string{"m"}, []string{"l"}, nil},
	} {
		t.Run(tc.metrics[0], func(t *testing.T) {
			m, l, u := promRefs(tc.q)
			if !slices.Equal(m, tc.metrics) || !slices.Equal(l, tc.labels) || !slices.Equal(u, tc.unknownFunctions) {
				t.Errorf("%s: metrics %v labels %v unknown %v; want %v %v %v", tc.q, m, l, u, tc.metrics, tc.labels, tc.unknownFunctions)
			}
		})
	}
}

// scrapeLabels are the labels Prometheus adds to every sample: instance and job, and the
// target labels of prometheus/prometheus.yml.
var scrapeLabels = map[string]bool{"instance": true, "job": true, "cluster": true}

// TestDashboardQueriesExportedMetrics starts a cluster, scrapes every server, and checks
// that every metric the Grafana dashboard queries is exported, and every label it groups
// or filters by is carried by one of the metrics of the query. It also reads the metrics
// path of the Prometheus example from the servers.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	queries := dashboardQueries(t, "grafana/pegasus.json")
	c := testcluster.Start(t, testcluster.Options{Metas: 3, Replicas: 3})
	c.CreateTableReplicas(t, "temp", 4, 3)
	c.MetaLeader(t)
	exported := scrape(t, c, "/metrics/prometheus")
	used := map[string]bool{}
	for _, q := range queries {
		metrics, labels, unknown := promRefs(q.expr)
		if len(unknown) > 0 {
			t.Errorf("%s: %q calls unknown functions %v", q.where, q.expr, unknown)
		}
		if len(metrics) == 0 {
			t.Errorf("%s: %q names no metric", q.where, q.expr)
		}
		for _, m := range metrics {
			used[m] = true
			if exported[m] == nil {
				t.Errorf("%s: %q queries %s, which no server exports", q.where, q.expr, m)
			}
		}
		for _, l := range labels {
			carried := scrapeLabels[l]
			for _, m := range metrics {
				carried = carried || exported[m][l]
			}
			if !carried {
				t.Errorf("%s: %q uses label %s, which none of %v carries", q.where, q.expr, l, metrics)
			}
		}
	}
	t.Logf("%d queries use %d of the %d exported families", len(queries), len(used), len(exported))

	raw, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	paths := regexp.MustCompile(`(?m)^\s*metrics_path:\s*(\S+)\s*$`).FindAllStringSubmatch(string(raw), -1)
	if len(paths) == 0 {
		t.Fatal("prometheus.yml sets no metrics_path")
	}
	for _, p := range paths {
		if got := scrape(t, c, p[1]); len(got) == 0 {
			t.Errorf("prometheus.yml: metrics_path %s gives no metrics", p[1])
		}
	}
}
