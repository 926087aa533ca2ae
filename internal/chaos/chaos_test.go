package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/linearize"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/raftlog"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// buildBinary builds the pegasus command once per test binary.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

// binary returns the pegasus command: $PEGASUS_BIN if set, else one built from this module.
func binary(t *testing.T) string {
	if p := os.Getenv("PEGASUS_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pegasus-chaos-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "pegasus")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, "github.com/gopegasus/pegasus/cmd/pegasus").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// proc is one server process that can be killed and restarted with the same arguments.
type proc struct {
	t    *testing.T
	name string
	args []string
	log  *os.File
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(binary(p.t), p.args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd = cmd
	done := make(chan struct{})
	p.done = done
	go func() { _ = cmd.Wait(); close(done) }()
}

// signal sends sig to the process if it runs.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// kill SIGKILLs the process and waits until it is gone.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// cluster is one meta and three replica servers as processes on free loopback ports.
type cluster struct {
	t        *testing.T
	meta     *proc
	metaAddr string
	replicas []*proc
	// dir, log and extra are where new replica servers keep their data and logs, and the
	// flags they get.
	dir   string
	log   *os.File
	extra []string
}

// handedOut are the ports freePort returned: a port closed a moment ago can be handed out
// by the kernel again, before the server given it has bound it.
var (
	handedOutMu sync.Mutex
	handedOut   = map[int]bool{}
)

func freePort(t *testing.T) int {
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for {
		ln, err := listen()
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*netTCPAddr).Port
		ln.Close()
		if port > 0 && !handedOut[port] {
			handedOut[port] = true
			return port
		}
	}
}

func startCluster(t *testing.T) *cluster {
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "servers.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("server logs:\n%s", tail(b, 8000))
				// The whole log outlives the test's directory, for what the tail leaves out.
				f := filepath.Join(os.TempDir(), fmt.Sprintf("pegasus-chaos-servers-%d-%d.log", os.Getpid(), time.Now().UnixNano()))
				if err := os.WriteFile(f, b, 0o644); err == nil {
					t.Logf("all server logs: %s", f)
				}
			}
		}
	})
	c := &cluster{t: t}
	// The servers authenticate each other with a cluster secret, as a deployment must.
	secretFile := filepath.Join(dir, "cluster_secret")
	if err := os.WriteFile(secretFile, rpc.GenerateSecret(), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := []string{"--cluster-secret-file", secretFile}
	extra := append(serverConfig(t, dir, false), secret...)
	c.metaAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.meta = &proc{t: t, name: "meta", log: logf, args: append([]string{"meta", "--listen", c.metaAddr,
		"--data", filepath.Join(dir, "meta"), "--log-level", logLevel()}, extra...)}
	c.meta.start()
	t.Cleanup(c.meta.kill)
	c.dir, c.log, c.extra = dir, logf, append(serverConfig(t, dir, true), secret...)
	for range 3 {
		c.addReplica()
	}
	return c
}

// logLevel is the servers' log level: $PEGASUS_CHAOS_LOG_LEVEL (debug, info, warn or error),
// warn when unset.
func logLevel() string {
	if v := os.Getenv("PEGASUS_CHAOS_LOG_LEVEL"); v != "" {
		return v
	}
	return "warn"
}

// addReplica starts one more replica server process.
func (c *cluster) addReplica() {
	t := c.t
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	r := &proc{t: t, name: "replica " + addr, log: c.log, args: append([]string{"replica", "--listen", addr,
		"--data", filepath.Join(c.dir, fmt.Sprintf("replica%d", len(c.replicas))), "--metas", c.metaAddr, "--log-level", logLevel()}, c.extra...)}
	r.start()
	t.Cleanup(r.kill)
	c.replicas = append(c.replicas, r)
}

// serverConfig returns the server flags that set the raft log durability of every
// server to $PEGASUS_CHAOS_DURABILITY (always or os; unset: the servers' default, always),
// and, for a replica server, its [replication] quiesce to $PEGASUS_CHAOS_QUIESCE (true or
// false; unset: the servers' default): a configuration file in dir.
func serverConfig(t *testing.T, dir string, replica bool) []string {
	d, q := os.Getenv("PEGASUS_CHAOS_DURABILITY"), os.Getenv("PEGASUS_CHAOS_QUIESCE")
	if !replica {
		q = "" // a meta server has no such setting
	}
	if d == "" && q == "" {
		return nil
	}
	conf := "[replication]\n"
	if d != "" {
		if _, err := raftlog.ParseDurability(d); err != nil {
			t.Fatalf("PEGASUS_CHAOS_DURABILITY: %v", err)
		}
		conf += "raft_log_durability = " + d + "\n"
		if !replica {
			t.Logf("raft log durability %s", d)
		}
	}
	if q != "" {
		if _, err := strconv.ParseBool(q); err != nil {
			t.Fatalf("PEGASUS_CHAOS_QUIESCE: %v", err)
		}
		conf += "quiesce = " + q + "\n"
		t.Logf("quiesce %s", q)
	}
	name := filepath.Join(dir, "metas.ini")
	if replica {
		name = filepath.Join(dir, "replicas.ini")
	}
	if err := os.WriteFile(name, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"--config", name}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// openTable opens a table with a client of the cluster, closed when the test ends.
func (c *cluster) openTable(name string) pegasus.TableConnector {
	t := c.t
	client, err := pegasus.New(pegasus.Config{MetaServers: []string{c.metaAddr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	tb, err := client.OpenTable(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// createTable creates a table with 3 replicas and waits for its primaries.
func (c *cluster) createTable(name string, partitions int) {
	t := c.t
	conn := rpc.NewConn(c.metaAddr, rpc.ConnConfig{})
	defer conn.Close()
	poll.UntilOK(t, "table "+name+" created", func(ctx context.Context) (bool, error) {
		var resp idl.CreateAppResponse
		err := conn.Call(ctx, wire.Header{}, idl.RPCCreateApp, &idl.CreateAppRequest{AppName: name, Options: idl.CreateAppOptions{
			PartitionCount: int32(partitions), ReplicaCount: 3, SuccessIfExist: true, AppType: "pegasus", IsStateful: true,
			Envs: map[string]string{}}}, &resp)
		return err == nil && wire.CodeError(string(resp.Err)) == nil, nil
	})
	poll.UntilOK(t, "primaries of table "+name, func(ctx context.Context) (bool, error) {
		var resp idl.QueryCfgResponse
		err := conn.Call(ctx, wire.Header{}, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: name}, &resp)
		ready := err == nil && len(resp.Partitions) == partitions
		for _, p := range resp.Partitions {
			ready = ready && !p.Primary.IsZero() && len(p.Secondaries) == 2
		}
		return ready, nil
	})
}

// describeTable is the table's partition configuration as the meta reports it, for failure
// messages.
func (c *cluster) describeTable(name string) string {
	conn := rpc.NewConn(c.metaAddr, rpc.ConnConfig{})
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var resp idl.QueryCfgResponse
	if err := conn.Call(ctx, wire.Header{}, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: name}, &resp); err != nil {
		return "query failed: " + err.Error()
	}
	var b strings.Builder
	for _, p := range resp.Partitions {
		fmt.Fprintf(&b, "  partition %d: ballot %d, primary %v, secondaries %v\n", p.PID.PartitionIndex, p.Ballot, p.Primary, p.Secondaries)
	}
	return b.String()
}

// checkHistory checks rec's history of keys with package linearize, logging each key's
// result, and returns the overall result.
func checkHistory(t *testing.T, rec *linearize.Recorder, keys []string) porcupine.CheckResult {
	t.Helper()
	res, per := rec.Check(keys, 5*time.Minute)
	for _, kr := range per {
		t.Logf("key %s: %d operations checked in %v: %s", kr.Key, kr.Ops, kr.Took.Round(time.Millisecond), kr.Result)
		if kr.Visualization != "" {
			t.Logf("visualization: %s", kr.Visualization)
		}
	}
	return res
}

// keyEpoch is how long the chaos clients use one set of keys (see the test).
const keyEpoch = time.Minute

func chaosDuration() time.Duration {
	if v := os.Getenv("PEGASUS_CHAOS_DURATION"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	if testing.Short() {
		return 5 * time.Second
	}
	return 20 * time.Second
}

// balanced reports whether table chaos has its replicas and primaries within one of the mean
// over n servers, with no move under way, and describes the counts.
func balanced(ctx context.Context, adm admin.Client, n int) (bool, string) {
	cfg, err := adm.QueryConfig(ctx, "chaos")
	if err != nil {
		return false, err.Error()
	}
	replicas, primaries := map[string]int{}, map[string]int{}
	for _, p := range cfg.Partitions {
		if p.Primary == "" {
			return false, fmt.Sprintf("partition %d has no primary", p.Index)
		}
		primaries[p.Primary]++
		replicas[p.Primary]++
		for _, s := range p.Secondaries {
			replicas[s]++
		}
	}
	desc := fmt.Sprintf("replicas %v, primaries %v", replicas, primaries)
	info, err := adm.ClusterInfo(ctx)
	if err != nil {
		return false, err.Error()
	}
	for _, it := range info {
		if it.Key == "balance_operation_count" && it.Value != "move_pri=0,copy_pri=0,copy_sec=0,total=0" {
			return false, desc + ", under way " + it.Value
		}
	}
	// within reports whether every one of the n servers holds within one of the mean; a
	// server missing from count holds none (4 primaries over 5 servers leave one without).
	within := func(count map[string]int) bool {
		if len(count) > n {
			return false
		}
		total := 0
		for _, c := range count {
			total += c
		}
		mean := float64(total) / float64(n)
		if len(count) < n && mean > 1 {
			return false
		}
		for _, c := range count {
			if d := float64(c) - mean; d > 1 || d < -1 {
				return false
			}
		}
		return true
	}
	return within(replicas) && within(primaries), desc
}

// strike runs one fault every 2 s until ctx ends: fault strikes a server, returns once the
// fault is over and names the server. After each, a write (lastWriteOK, as rec counts time)
// must succeed within 10 s. It returns the faults struck and the longest such recovery; what
// names the faults in errors.
func strike(ctx context.Context, t *testing.T, rec *linearize.Recorder, lastWriteOK *atomic.Int64, what string, fault func() string) (int, time.Duration) {
	faults := 0
	var worst time.Duration
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		if ctx.Err() != nil {
			break
		}
		victim := fault()
		faults++
		ended := rec.Now()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		_ = poll.Wait(wctx, func(context.Context) (bool, error) { return lastWriteOK.Load() >= ended, nil })
		wcancel()
		if ctx.Err() == nil {
			if lastWriteOK.Load() < ended {
				t.Errorf("no write succeeded within 10 s after the %s of %s ended", what, victim)
			}
			worst = max(worst, time.Duration(lastWriteOK.Load()-ended))
		}
	}
	return faults, worst
}

// finalReads reads every key once the faults are over, as part of the history: every
// acknowledged write must be reflected in them. describe, if not nil, tells on a failure of
// key's read how the meta sees the table.
func finalReads(t *testing.T, rec *linearize.Recorder, tb linearize.Table, keys []string, describe func(key string) string) {
	for _, k := range keys {
		fctx, fcancel := context.WithTimeout(t.Context(), 20*time.Second)
		var err error // the last read's: Wait tries once at least
		// Every attempt's error, in order with repeats counted: the last one alone may only
		// say that the 20 s ran out.
		var tries []string
		start := time.Now()
		_ = poll.Wait(fctx, func(context.Context) (bool, error) {
			began := time.Now()
			err = rec.Run(fctx, tb, 99, linearize.Input{Op: "get", Key: k})
			if err != nil {
				e := fmt.Sprintf("after %v, %v: %v", began.Sub(start).Round(time.Millisecond), time.Since(began).Round(time.Millisecond), err)
				tries = append(tries, e)
			}
			return err == nil, nil
		})
		fcancel()
		if err != nil && describe != nil {
			t.Fatalf("final read of %s failed: %v\nits attempts:\n  %s\ntable as the meta sees it:\n%s", k, err, strings.Join(tries, "\n  "), describe(k))
		}
		if err != nil {
			t.Fatalf("final read of %s failed: %v\nits attempts:\n  %s", k, err, strings.Join(tries, "\n  "))
		}
	}
}

// freshRead reads key of table once with a new client (its own configuration query and
// connections), for a failed final read's message: whether the servers serve the key to a
// client that has no state of its own yet.
func (c *cluster) freshRead(table, key string) string {
	client, err := pegasus.New(pegasus.Config{MetaServers: []string{c.metaAddr}})
	if err != nil {
		return "a new client: " + err.Error() + "\n"
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	tb, err := client.OpenTable(ctx, table)
	if err == nil {
		_, err = tb.Get(ctx, []byte(key), linearize.SortKey)
	}
	return fmt.Sprintf("a new client's read of %s: %v after %v\n", key, err, time.Since(start).Round(time.Millisecond))
}

// keepDiagnostics saves, for a failed final read, every replica server's goroutine stacks
// (Go's pprof format: go tool pprof -traces FILE) and metrics (per replica: raft_ticks,
// raft_quiesced, ...) in the system's temporary directory, and logs where.
func (c *cluster) keepDiagnostics() {
	t := c.t
	for _, r := range c.replicas {
		addr := strings.TrimPrefix(r.name, "replica ")
		for _, what := range []string{"pprof/goroutine", "metrics"} {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			b, err := httpGet(ctx, "http://"+addr+"/"+what)
			cancel()
			if err != nil {
				t.Logf("%s of %s: %v", what, addr, err)
				continue
			}
			f := filepath.Join(os.TempDir(), fmt.Sprintf("pegasus-chaos-%s-%s-%d", strings.ReplaceAll(what, "/", "-"),
				strings.ReplaceAll(addr, ":", "-"), time.Now().UnixNano()))
			if err := os.WriteFile(f, b, 0o644); err == nil {
				t.Logf("%s of %s: %s", what, addr, f)
			}
		}
	}
}

// httpGet returns the body of a GET of url.
func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// fault is what a chaos run does to one replica server at a time: inject starts it and
// returns once it is over (the server runs again).
type fault struct {
	name   string // for the log line: "kills", "pauses"
	inject func(victim *proc, rng *rand.Rand)
}

// killFault SIGKILLs the server and restarts it 0.5 to 2 s later.
var killFault = fault{"kills", func(victim *proc, rng *rand.Rand) {
	victim.kill()
	time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
	victim.start()
}}

// pauseFault SIGSTOPs the server for 1.5 to 4 s, longer than an election timeout, and
// SIGCONTs it: a leader frozen meanwhile wakes up believing it still leads, with its
// followers' old answers and its clients' reads waiting in its sockets, while the others
// have elected a new leader and written on. It must not serve those reads from its state.
var pauseFault = fault{"pauses", func(victim *proc, rng *rand.Rand) {
	victim.signal(syscall.SIGSTOP)
	time.Sleep(time.Duration(1500+rng.IntN(2500)) * time.Millisecond)
	victim.signal(syscall.SIGCONT)
}}

func TestChaosKillReplicaLinearizable(t *testing.T) { runChaos(t, killFault) }

func TestChaosPauseReplicaLinearizable(t *testing.T) { runChaos(t, pauseFault) }

// runChaos runs 8 clients on a small key set of a 4-partition table while f strikes a
// random replica server every 2 s, then checks the history with porcupine: linearizable,
// every acknowledged write in the final reads, and writes succeeding again within 10 s of
// each fault's end.
func runChaos(t *testing.T, f fault) {
	c := startCluster(t)
	c.createTable("chaos", 4)
	tb := c.openTable("chaos")

	rec := linearize.NewRecorder()
	// A small key set, so operations contend; checked key by key, so not too small for the
	// checker, whose search grows quickly with the operations of one key that may or may not
	// have happened. Every keyEpoch the clients move on to a fresh set of 10 keys, so that a
	// long run gives the checker more keys rather than longer histories of each: its memory
	// grows with the square of a key's history (a 5-minute run on 10 keys exhausted 24 GiB).
	duration := chaosDuration()
	sets := make([][]string, max(int((duration+keyEpoch-1)/keyEpoch), 1))
	var keys []string // every key of the run, for the final reads and the check
	for e := range sets {
		for i := range 10 {
			sets[e] = append(sets[e], fmt.Sprintf("e%d-k%d", e, i))
		}
		keys = append(keys, sets[e]...)
	}
	ctx, cancel := context.WithTimeout(t.Context(), duration)
	defer cancel()

	// PEGASUS_CHAOS_ELASTIC=1: two more replica servers join a lively cluster and the table
	// splits from 4 to 8 partitions, while the kills go on (among all five servers);
	// =rebalance: without the split.
	var adm admin.Client
	elastic := os.Getenv("PEGASUS_CHAOS_ELASTIC")
	if elastic != "" {
		var err error
		if adm, err = admin.New(admin.Config{MetaServers: []string{c.metaAddr}}); err != nil {
			t.Fatal(err)
		}
		defer adm.Close()
		if _, err := adm.SetMetaLevel(t.Context(), "lively"); err != nil {
			t.Fatal(err)
		}
		c.addReplica()
		c.addReplica()
		if elastic != "rebalance" {
			if err := adm.StartPartitionSplit(t.Context(), "chaos", 8); err != nil {
				t.Fatal(err)
			}
		}
	}

	// After every restart, the time until the next acknowledged write.
	var lastWriteOK atomic.Int64
	var wg sync.WaitGroup
	for cl := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), 7))
			for ctx.Err() == nil {
				in := linearize.RandomOp(rng, sets[min(int(time.Duration(rec.Now())/keyEpoch), len(sets)-1)])
				if rec.Run(context.WithoutCancel(ctx), linearize.Ours(tb), cl, in) == nil && in.Op != "get" {
					lastWriteOK.Store(rec.Now())
				}
			}
		})
	}

	rng := rand.New(rand.NewPCG(42, 42))
	faults, worstRecovery := strike(ctx, t, rec, &lastWriteOK, f.name, func() string {
		victim := c.replicas[rng.IntN(len(c.replicas))]
		f.inject(victim, rng)
		return victim.name
	})
	wg.Wait()
	finalReads(t, rec, linearize.Ours(tb), keys, func(k string) string {
		c.keepDiagnostics()
		return c.describeTable("chaos") + c.freshRead("chaos", k)
	})

	if adm != nil {
		// The split ends and the cluster ends balanced once the kills stop.
		ectx, ecancel := context.WithTimeout(t.Context(), 3*time.Minute)
		if err := adm.WaitPartitionSplit(ectx, "chaos", nil); err != nil {
			t.Fatalf("the split did not end: %v\n%s", err, c.describeTable("chaos"))
		}
		var last string
		if err := poll.Wait(ectx, func(ctx context.Context) (bool, error) {
			done, desc := balanced(ctx, adm, len(c.replicas))
			if ctx.Err() == nil {
				last = desc
			}
			return done, nil
		}); err != nil {
			t.Fatalf("not balanced after the kills: %s: %v\n%s", last, err, c.describeTable("chaos"))
		}
		ecancel()
		t.Logf("chaos elastic (%s): balanced over %d servers: %s", elastic, len(c.replicas), last)
	}

	res := checkHistory(t, rec, keys)
	t.Logf("chaos: %v, %d %s, %d operations acknowledged, %d failed or timed out, worst write recovery after a fault %v, result %s",
		duration, faults, f.name, rec.Acked(), rec.Failed(), worstRecovery, res)
	if res == porcupine.Illegal {
		t.Fatal("history is not linearizable")
	}
	if res != porcupine.Ok {
		t.Fatalf("linearizability check inconclusive: %s", res)
	}
	if faults == 0 || rec.Acked() == 0 {
		t.Fatalf("nothing exercised: %d %s, %d acknowledged", faults, f.name, rec.Acked())
	}
}

// SIGKILL every replica server in the middle of acknowledged writes; after a restart every
// acknowledged write is there.
func TestKillWholeClusterKeepsAcknowledgedWrites(t *testing.T) {
	c := startCluster(t)
	c.createTable("durable", 4)
	tb := c.openTable("durable")
	var mu sync.Mutex
	var acked []string
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				k := fmt.Sprintf("w%d-%d", w, i)
				cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
				err := tb.Set(cctx, []byte(k), []byte("s"), []byte(k))
				ccancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, k)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	for _, r := range c.replicas {
		r.kill() // all of them, while writes are in flight
	}
	cancel()
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n == 0 {
		t.Fatal("no write was acknowledged before the kill")
	}
	for _, r := range c.replicas {
		r.start()
	}
	for _, k := range acked {
		var v []byte
		var err error
		_ = poll.Wait(t.Context(), func(ctx context.Context) (bool, error) {
			v, err = tb.Get(ctx, []byte(k), []byte("s"))
			return err == nil, nil
		})
		if err != nil || string(v) != k {
			t.Fatalf("acknowledged write %s after the restart: %q %v", k, v, err)
		}
	}
	t.Logf("%d acknowledged writes, all present after killing and restarting every replica server", n)
}
