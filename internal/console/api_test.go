package console_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/console"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/testcluster"
	"github.com/gopegasus/pegasus/internal/wire"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode == http.StatusOK && ct != "application/json" {
		t.Fatalf("%s: content type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode
}

// until is [poll.Until] within ctx, the test's budget for all its waits.
func until(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	if err := poll.Wait(ctx, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

type apiCluster struct {
	Leader string
	Metas  []struct {
		Addr      string
		Leader    bool
		Reachable *bool
	}
	Nodes []struct {
		Addr                string
		Alive               bool
		Replicas, Primaries int
		DiskBytes           *int64 `json:"disk_bytes"`
	}
	Summary struct {
		Partitions int
		Healthy    int `json:"healthy_partitions"`
		AliveNodes int `json:"alive_nodes"`
	}
	History []struct {
		WriteQPS float64 `json:"write_qps"`
	}
}

type apiTables struct {
	Tables []struct {
		Name       string
		Partitions int
		Health     struct{ Healthy int }
		WriteQPS   float64 `json:"write_qps"`
		Ops        []struct {
			Op  string
			QPS float64
			P99 int64 `json:"p99_ns"`
		}
		SizeBytes int64 `json:"size_bytes"`
		DiskBytes int64 `json:"disk_bytes"`
	}
}

type apiTable struct {
	Partitions []struct {
		Index       int32
		Primary     string
		Secondaries []string
		Ballot      int64
		Health      string
	}
}

// TestConsoleAPI reads the console's API on a running cluster and checks it against the
// metas and the replica servers: servers, partition configurations, sampled load and size,
// a follower's redirect, the page's headers, and the manual compaction state it samples.
func TestConsoleAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a metrics window")
	}
	c := testcluster.Start(t, testcluster.Options{Metas: 3, Replicas: 3})
	app := c.CreateTableReplicas(t, "temp", 8, 3)
	leader := c.MetaLeader(t)
	base := "http://" + leader
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	var cl apiCluster
	until(t, ctx, "3 alive servers leading 8 partitions", func() bool {
		getJSON(t, base+"/console/api/cluster", &cl)
		p := 0
		for _, n := range cl.Nodes {
			p += n.Primaries
		}
		return cl.Summary.AliveNodes == 3 && p == 8 && cl.Summary.Healthy == 8
	})
	var metas []string
	for _, m := range cl.Metas {
		metas = append(metas, m.Addr)
		if m.Leader != (m.Addr == leader) {
			t.Errorf("meta %s shown as leader=%v; the leader is %s", m.Addr, m.Leader, leader)
		}
	}
	if cl.Leader != leader || !slices.Equal(slices.Sorted(slices.Values(metas)), slices.Sorted(slices.Values(c.MetaAddrs()))) {
		t.Errorf("leader %s, metas %v; want %s, %v", cl.Leader, metas, leader, c.MetaAddrs())
	}
	hosted := map[string]int{}
	for _, n := range cl.Nodes {
		hosted[n.Addr] = n.Replicas
		if !slices.Contains(c.ReplicaAddrs(), n.Addr) || n.Replicas != 8 {
			t.Errorf("node %+v: want one of %v hosting 8 replicas", n, c.ReplicaAddrs())
		}
	}

	// Partition configurations are the ones clients get.
	until(t, ctx, "the partitions as the meta serves them", func() bool {
		var tv apiTable
		if getJSON(t, base+"/console/api/table?name=temp", &tv) != http.StatusOK || len(tv.Partitions) != 8 {
			return false
		}
		var resp idl.QueryCfgResponse
		if err := c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "temp"}, &resp); err != nil {
			t.Fatal(err)
		}
		for i, p := range tv.Partitions {
			pc := resp.Partitions[i]
			var secs []string
			for _, s := range pc.Secondaries {
				secs = append(secs, s.String())
			}
			if p.Index != int32(i) || p.Primary != pc.Primary.String() || p.Ballot != pc.Ballot || p.Health != console.Healthy ||
				!slices.Equal(p.Secondaries, secs) {
				return false
			}
		}
		return true
	})
	var missing map[string]string
	if getJSON(t, base+"/console/api/table?name=nope", &missing) != http.StatusNotFound || missing["error"] == "" {
		t.Errorf("unknown table: %v", missing)
	}

	// Load and size, sampled from the replica servers once their window has the writes.
	tbl := c.OpenTable(t, "temp")
	writing, stopWriting := context.WithCancel(ctx)
	var writer sync.WaitGroup
	stop := func() {
		stopWriting()
		writer.Wait()
	}
	defer stop()
	writer.Go(func() {
		for i := 0; writing.Err() == nil; i++ {
			_ = tbl.Set(writing, []byte(fmt.Sprint("k", i%200)), []byte("s"), []byte("some value"))
		}
	})
	var tables apiTables
	until(t, ctx, "sampled writes on temp", func() bool {
		getJSON(t, base+"/console/api/tables", &tables)
		if len(tables.Tables) != 1 {
			return false
		}
		tv := tables.Tables[0]
		put := slices.IndexFunc(tv.Ops, func(o struct {
			Op  string
			QPS float64
			P99 int64 `json:"p99_ns"`
		}) bool {
			return o.Op == "put"
		})
		return tv.WriteQPS > 0 && put >= 0 && tv.Ops[put].P99 > 0 && tv.SizeBytes > 0
	})
	stop()
	tv := tables.Tables[0]
	if tv.Name != "temp" || tv.Partitions != 8 || tv.Health.Healthy != 8 || tv.DiskBytes < 3*tv.SizeBytes/2 {
		t.Errorf("table %+v: want 8 healthy partitions, 3 copies on disk", tv)
	}
	getJSON(t, base+"/console/api/cluster", &cl)
	for _, n := range cl.Nodes {
		if n.DiskBytes == nil || *n.DiskBytes <= 0 {
			t.Errorf("node %s: disk %v", n.Addr, n.DiskBytes)
		}
	}
	if len(cl.History) < 2 || slices.IndexFunc(cl.History, func(p struct {
		WriteQPS float64 `json:"write_qps"`
	}) bool {
		return p.WriteQPS > 0
	}) < 0 {
		t.Errorf("history %+v: want points with writes", cl.History)
	}
	for _, m := range cl.Metas {
		if m.Reachable == nil || !*m.Reachable {
			t.Errorf("meta %s reachable %v", m.Addr, m.Reachable)
		}
	}

	// A follower sends every console path to the leader, and lists the console's paths.
	for _, f := range c.MetaAddrs() {
		if f == leader {
			continue
		}
		for _, p := range []string{"/console", "/console/table?name=temp", "/console/api/cluster"} {
			resp, err := noRedirect.Get("http://" + f + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != base+p {
				t.Errorf("%s%s: %d to %q, want 307 to %s", f, p, resp.StatusCode, resp.Header.Get("Location"), base+p)
			}
		}
		var list map[string]string
		getJSONText(t, "http://"+f+"/", &list)
		for _, p := range []string{"/console", "/console/tables", "/console/table", "/console/operations",
			"/console/api/cluster", "/console/api/tables", "/console/api/table", "/console/api/operations", "/meta/apps"} {
			if list[p] == "" {
				t.Errorf("/ does not list %s", p)
			}
		}
	}

	// The page: HTML, gzipped when asked, with its policy and a validator.
	req, _ := http.NewRequest(http.MethodGet, base+"/console/tables", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	html, err := io.ReadAll(zr)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.HasPrefix(string(html), "<!doctype html>") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("page: %d %v %v", resp.StatusCode, resp.Header, err)
	}
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	if again, err := http.DefaultTransport.RoundTrip(req); err != nil || again.StatusCode != http.StatusNotModified {
		t.Fatalf("page again with its ETag: %v %v", again, err)
	}

	// Manual compaction state, read from every server as the sampler reads it.
	compact := `{"app_name":"temp","type":"once","target_level":-1,"bottommost_level_compaction":"skip","max_concurrent_running_count":0,"trigger_time":""}`
	if resp, err := http.Post(base+"/meta/app/start_compaction", "application/json", strings.NewReader(compact)); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	for _, addr := range c.ReplicaAddrs() {
		until(t, ctx, "compactions finished on "+addr, func() bool {
			q, r, f, i, err := console.CompactionStatusOf(ctx, addr, app)
			if err != nil {
				t.Fatal(err)
			}
			if q+r+f+i != int64(hosted[addr]) {
				t.Fatalf("%s: %d+%d+%d+%d replicas in compaction states, it hosts %d", addr, q, r, f, i, hosted[addr])
			}
			return f == int64(hosted[addr])
		})
	}
	var ops struct{ Operations []console.Operation }
	getJSON(t, base+"/console/api/operations", &ops)
	for _, op := range ops.Operations {
		if op.Kind == "manual_compaction" && op.Done >= op.Total {
			t.Errorf("a finished compaction is listed as in progress: %+v", op)
		}
	}
}

// getJSONText decodes a text/plain JSON answer (the Pegasus endpoints).
func getJSONText(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

// samplers counts the console sampler goroutines of the process.
func samplers() int {
	buf := make([]byte, 16<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "console.(*Console).run(")
}

// TestCloseJoinsSampler stops a meta and then a second console over it while a replica
// server they read never answers: the meta's Run returns with its console's sampler gone,
// and Close returns with the other one gone.
func TestCloseJoinsSampler(t *testing.T) {
	if before := samplers(); before != 0 {
		t.Fatalf("%d console samplers before the test", before)
	}
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	asked := make(chan string, 16)
	var conns sync.WaitGroup
	defer conns.Wait()
	go func() {
		for {
			conn, err := hang.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer conn.Close()
				line, _ := bufio.NewReader(conn).ReadString('\n')
				select {
				case asked <- line:
				default:
				}
				_, _ = io.Copy(io.Discard, conn) // never answers; ends when the client gives up
			})
		}
	}()

	srv, err := meta.New(meta.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), RaftTick: 10 * time.Millisecond, NodeGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	for {
		changed := srv.LeaderChanged()
		if _, serving := srv.Leader(); serving {
			break
		}
		<-changed
	}
	conn := rpc.NewConn(srv.Addr(), rpc.ConnConfig{})
	defer conn.Close()
	var reply idl.Blob
	if err := conn.Call(ctx, wire.Header{}, cluster.RPCConfigSync,
		cluster.Encode(cluster.SyncRequest{Node: hang.Addr().String(), StartTime: 1}), &reply); err != nil {
		t.Fatal(err)
	}
	other := console.New(console.Config{Source: srv, Self: srv.Advertise()})
	other.Start(t.Context()) // not ended by the test's context: only Close stops it
	for line := range asked {
		if strings.HasPrefix(line, "GET /metrics?") {
			break // a sampler waits for this server now
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, rpc.ErrServerClosed) {
		t.Fatalf("meta Run: %v", err)
	}
	if n := samplers(); n != 1 {
		t.Fatalf("%d console samplers once the meta stopped; want only the other console's", n)
	}
	other.Close()
	if n := samplers(); n != 0 {
		t.Fatalf("%d console samplers after Close", n)
	}
	other.Close() // again: nothing to do
}

// TestConsoleShowsReplicaRebuild stops a replica server of a cluster that has a spare: the
// replicas the meta places on the spare are listed as rebuilds, with the primary's applied
// index as their total, until the primaries report them as voters and the partitions are
// healthy again.
func TestConsoleShowsReplicaRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the grace period")
	}
	c := testcluster.Start(t, testcluster.Options{Replicas: 4, NodeGrace: time.Second})
	c.CreateTableReplicas(t, "temp", 4, 3)
	tbl := c.OpenTable(t, "temp")
	for i := range 200 {
		if err := tbl.Set(t.Context(), []byte(fmt.Sprint("k", i)), []byte("s"), []byte(strings.Repeat("v", 1000))); err != nil {
			t.Fatal(err)
		}
	}
	base := "http://" + c.MetaLeader(t)
	var tv apiTable
	getJSON(t, base+"/console/api/table?name=temp", &tv)
	lost := tv.Partitions[0].Primary
	c.StopReplica(t, lost)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var seen console.Operation
	until(t, ctx, "a replica rebuild shown", func() bool {
		var ops struct{ Operations []console.Operation }
		getJSON(t, base+"/console/api/operations", &ops)
		for _, op := range ops.Operations {
			if op.Kind == "replica_rebuild" {
				seen = op
			}
		}
		return seen.Kind != ""
	})
	if seen.Table != "temp" || seen.Partition < 0 || seen.Total <= 0 || seen.Done > seen.Total || seen.Unit != "log entries" ||
		strings.Contains(seen.Detail, lost) {
		t.Fatalf("rebuild %+v (lost server %s)", seen, lost)
	}
	t.Logf("rebuild shown: %+v", seen)
	until(t, ctx, "the rebuilds done and every partition healthy", func() bool {
		var ops struct{ Operations []console.Operation }
		getJSON(t, base+"/console/api/operations", &ops)
		var tables apiTables
		getJSON(t, base+"/console/api/tables", &tables)
		return len(ops.Operations) == 0 && tables.Tables[0].Health.Healthy == 4
	})
}
