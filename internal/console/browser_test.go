package console_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/testcluster"
	"github.com/gopegasus/pegasus/internal/wire"
)

// maxPageBytes is the most the cluster page may transfer (document and first API answer).
const maxPageBytes = 300 << 10

// TestConsoleInBrowser loads every console page in a headless Chromium against a running
// cluster of 3 metas and 3 replica servers with a table of 100 partitions (one replica each)
// and one of 8 (three replicas each) under load, and checks what the pages show against
// the metas: server status and counts, partition configurations, a stopped server turning
// dead, charts filling. Any JavaScript error or
// failed request fails it. Screenshots go to the test's artifact directory (go test
// -artifacts -outputdir DIR keeps them).
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and a browser")
	}
	b := startBrowser(t)
	c := testcluster.Start(t, testcluster.Options{Metas: 3, Replicas: 3})
	const table, partitions = "big", 100 // one replica each, so that -race keeps up
	const small, smallParts = "temp", 8  // three replicas each
	c.CreateTableReplicas(t, table, partitions, 1)
	c.CreateTableReplicas(t, small, smallParts, 3)
	c.WaitSpreadPrimaries(t, small)
	const wantPrimaries, wantReplicas = partitions + smallParts, partitions + 3*smallParts
	leader := c.MetaLeader(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	tb, err := b.newTab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.ArtifactDir()
	shot := func(name string) {
		t.Helper()
		if err := tb.screenshot(ctx, filepath.Join(dir, name)); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
	}
	noErrors := func(where string) {
		t.Helper()
		if errs := tb.errorsSoFar(); len(errs) > 0 {
			t.Fatalf("%s: the page reported errors:\n%v", where, errs)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const rendered = `document.getElementById("status").dataset.updated`

	// The cluster page, loaded cold three times on the idle cluster: how long until its
	// data shows, and how many bytes it takes.
	for i := range 3 {
		pl, err := measureLoad(ctx, tb, "http://"+leader+"/console", rendered)
		must(err)
		t.Logf("cluster page load %d, %d partitions on 3 servers: %s", i+1, partitions, pl)
		if got := max(pl.network, pl.Nav+pl.Res); got <= 0 || got >= maxPageBytes {
			t.Fatalf("the cluster page transferred %d bytes; want (0, %d)", got, maxPageBytes)
		}
	}
	noErrors("cluster page")
	stopLoad := load(t, c, table)
	defer stopLoad()

	// What it shows: every server alive, their primaries adding up to the partitions.
	// (A leader transfer in between leaves a partition without a primary for a moment.)
	must(tb.waitFor(ctx, "3 alive replica servers leading every partition", fmt.Sprintf(`(() => {
		const rows = [...document.querySelectorAll('tr[data-status="alive"]')];
		const sum = (i) => rows.reduce((a, r) => a + Number(r.cells[i].textContent), 0);
		return rows.length === 3 && sum(3) === %d && sum(2) === %d; })()`, wantPrimaries, wantReplicas)))
	var nodes []struct{ Addr, Status, Primaries, Replicas string }
	must(tb.eval(ctx, `[...document.querySelectorAll("tr[data-node]")].map((r) => ({Addr: r.dataset.node,
		Status: r.dataset.status, Replicas: r.cells[2].textContent, Primaries: r.cells[3].textContent}))`, &nodes))
	var primaries, replicas int
	for _, n := range nodes {
		p, _ := strconv.Atoi(n.Primaries)
		r, _ := strconv.Atoi(n.Replicas)
		primaries, replicas = primaries+p, replicas+r
	}
	if len(nodes) != 3 || primaries != wantPrimaries || replicas != wantReplicas {
		t.Fatalf("replica servers shown %+v: %d primaries and %d replicas, want 3 servers, %d and %d",
			nodes, primaries, replicas, wantPrimaries, wantReplicas)
	}
	// The metas, with the leader the metas name now: under load an election may have moved
	// it since the page was loaded (the page then follows it).
	var metaRows []string
	if err := poll.Wait(ctx, func(context.Context) (bool, error) {
		metaRows = nil
		must(tb.eval(ctx, `[...document.querySelectorAll("main table")[0].rows].slice(1).map((r) => r.cells[0].textContent + " " + r.cells[1].textContent)`, &metaRows))
		leader = c.MetaLeader(t)
		return slices.Contains(metaRows, leader+" leader") && len(metaRows) == 3, nil
	}); err != nil {
		t.Fatalf("meta servers shown %q; want 3 with %s the leader", metaRows, leader)
	}

	// Load charts: two samples at least, with reads and writes.
	must(tb.waitFor(ctx, "charts with two samples of load",
		`(() => { const l = document.querySelector('polyline[data-series="read_qps"]');
		          return l && l.getAttribute("points").split(" ").length >= 2 &&
		                 Number(document.querySelectorAll(".tile .v")[3].textContent.replace(/,/g, "")) > 0; })()`))
	shot("cluster.png")
	noErrors("cluster page, charts")

	// A follower sends the browser to the leader.
	follower := ""
	for _, m := range c.MetaAddrs() {
		if m != leader {
			follower = m
		}
	}
	must(tb.navigate(ctx, "http://"+follower+"/console/tables"))
	var host string
	must(tb.eval(ctx, "location.host", &host))
	if leader = c.MetaLeader(t); host != leader {
		t.Fatalf("/console/tables on follower %s ended at %s, want the leader %s", follower, host, leader)
	}

	// The tables page: the table's partitions, health and load.
	must(tb.waitFor(ctx, "the table's row with load", fmt.Sprintf(`(() => { const r = document.querySelector('tr[data-table=%q]');
		return r && r.cells[2].textContent === "%d" && r.cells[4].textContent === "all healthy" && r.cells[7].textContent.includes("p99"); })()`,
		table, partitions)))
	shot("tables.png")
	noErrors("tables page")

	// One table: every partition's primary and secondaries are the ones the meta serves to
	// clients.
	for _, tc := range []struct {
		name  string
		parts int
	}{{small, smallParts}, {table, partitions}} {
		must(tb.navigate(ctx, "http://"+leader+"/console/table?name="+tc.name))
		must(tb.waitFor(ctx, "the partitions", fmt.Sprintf(`document.querySelectorAll("tr[data-pidx]").length === %d`, tc.parts)))
		for {
			var shown []string
			must(tb.eval(ctx, `[...document.querySelectorAll("tr[data-pidx]")].map((r) => r.cells[1].textContent + " | " + r.cells[2].textContent)`, &shown))
			want := queryConfigs(t, c, tc.name)
			if slices.Equal(shown, want) {
				break
			}
			// A leader transfer can land between the page's refresh and the query: both again.
			t.Logf("%s: partitions shown differ from the meta's (a transfer in between?); again", tc.name)
			if err := tb.waitFor(ctx, "a refresh", `Date.now() - Number(`+rendered+`) < 100`); err != nil {
				t.Fatalf("%s: partitions shown %q, the meta serves %q (%v)", tc.name, shown, want, err)
			}
		}
		shot("table-" + tc.name + ".png")
		noErrors("table page " + tc.name)
	}

	must(tb.navigate(ctx, "http://"+leader+"/console/operations"))
	must(tb.waitFor(ctx, "the operations page", rendered))
	shot("operations.png")
	noErrors("operations page")

	// A stopped replica server shows as dead once the meta's grace period is over, on a page
	// that updates itself: no reload.
	must(tb.navigate(ctx, "http://"+leader+"/console"))
	must(tb.waitFor(ctx, "the cluster page's data", rendered))
	must(tb.eval(ctx, "window.notReloaded = true", nil))
	stopped := nodes[0].Addr
	c.StopReplica(t, stopped)
	must(tb.waitFor(ctx, stopped+" dead", fmt.Sprintf(`(() => { const r = document.querySelector('tr[data-node=%q]');
		return r && r.dataset.status === "dead"; })()`, stopped)))
	var notReloaded bool
	must(tb.eval(ctx, "window.notReloaded === true", &notReloaded))
	if !notReloaded {
		t.Fatal("the cluster page reloaded itself to show the dead server")
	}
	shot("cluster-dead.png")
	must(tb.navigate(ctx, "http://"+leader+"/console/operations"))
	must(tb.waitFor(ctx, "the operations page", rendered))
	shot("operations-rebuild.png")
	noErrors("after a replica server stopped")
	t.Logf("screenshots in %s", dir)
}

// pageLoad is what one cold load of a page took, from the page's performance timeline
// (milliseconds since the navigation started) and the test's clock.
type pageLoad struct {
	Nav, Res, Count                          int64
	DocStart, DocEnd, Load, APIStart, APIEnd float64
	Shown                                    float64
	network                                  int64
	seen                                     time.Duration
}

func (p pageLoad) String() string {
	return fmt.Sprintf("data on screen %.0f ms after the navigation started (document requested at %.0f ms, received by %.0f ms, "+
		"load event %.0f ms; API requested at %.0f ms, received by %.0f ms; the test saw it after %v); transferred %d bytes "+
		"(network), %d + %d bytes in 1+%d requests (resource timing)",
		p.Shown, p.DocStart, p.DocEnd, p.Load, p.APIStart, p.APIEnd, p.seen.Round(time.Millisecond), p.network, p.Nav, p.Res, p.Count)
}

// measureLoad loads url in tb with an empty cache and waits until rendered is true.
func measureLoad(ctx context.Context, tb *tab, url, rendered string) (pageLoad, error) {
	var pl pageLoad
	if err := tb.navigate(ctx, "about:blank"); err != nil {
		return pl, err
	}
	tb.resetNetwork()
	began := time.Now()
	if err := tb.navigate(ctx, url); err != nil {
		return pl, err
	}
	if err := tb.waitFor(ctx, "the page's data", rendered); err != nil {
		return pl, err
	}
	pl.seen = time.Since(began)
	if err := poll.Wait(ctx, func(context.Context) (bool, error) {
		var idle bool
		pl.network, idle = tb.network()
		return idle, nil
	}); err != nil {
		return pl, fmt.Errorf("waiting for the network to go idle: %w", err)
	}
	err := tb.eval(ctx, `(() => { const n = performance.getEntriesByType("navigation")[0];
		const r = performance.getEntriesByType("resource"), a = r[0] || {};
		return {Nav: n.transferSize, Res: r.reduce((a, e) => a + e.transferSize, 0), Count: r.length,
		        DocStart: n.requestStart, DocEnd: n.responseEnd, Load: n.loadEventEnd, APIStart: a.requestStart, APIEnd: a.responseEnd,
		        Shown: Number(`+rendered+`) - performance.timeOrigin}; })()`, &pl)
	return pl, err
}

// load runs reads and writes on the table until the returned function is called (or the
// test has run for long enough), which waits for it.
func load(t *testing.T, c *testcluster.Cluster, name string) func() {
	tbl := c.OpenTable(t, name)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				k := []byte(fmt.Sprintf("k%d-%d", w, i%500))
				opCtx, opCancel := context.WithTimeout(ctx, 5*time.Second)
				if i%2 == 0 {
					_ = tbl.Set(opCtx, k, []byte("s"), []byte("value"))
				} else {
					_, _ = tbl.Get(opCtx, k, []byte("s"))
				}
				opCancel()
			}
		})
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
}

// queryConfigs asks the meta leader for the table's partitions, each as the table page
// shows it: "primary | secondary, secondary".
func queryConfigs(t *testing.T, c *testcluster.Cluster, name string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var resp idl.QueryCfgResponse
	if err := c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: name}, &resp); err != nil {
		t.Fatal(err)
	}
	if err := wire.CodeError(string(resp.Err)); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(resp.Partitions))
	for i, p := range resp.Partitions {
		primary := "none"
		if !p.Primary.IsZero() {
			primary = p.Primary.String()
		}
		var secs []string
		for _, s := range p.Secondaries {
			secs = append(secs, s.String())
		}
		out[i] = primary + " | " + strings.Join(secs, ", ")
	}
	return out
}
