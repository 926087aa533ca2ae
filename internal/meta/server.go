package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/acl"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/console"
	"github.com/gopegasus/pegasus/internal/httpapi"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/lifecycle"
	"github.com/gopegasus/pegasus/internal/raftlog"
	"github.com/gopegasus/pegasus/internal/remotecmd"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Defaults and limits.
const (
	// MinReplicaCount and MaxReplicaCount bound a table's replica count.
	MinReplicaCount = 1
	MaxReplicaCount = 5
	// MaxPartitionCount bounds a table's partition count.
	MaxPartitionCount = 1 << 16
	// commitTimeout bounds the wait for a mutation of the periodic work (no request waits).
	commitTimeout = 10 * time.Second
)

// TableSpec is a table to create on a cluster's first start (see [Config].InitialTables).
type TableSpec struct {
	Name string
	// Partitions is the partition count, in [1, MaxPartitionCount].
	Partitions int32
	// Replicas is the replica count, in [MinReplicaCount, MaxReplicaCount].
	Replicas int32
}

// errStopped is returned to requests that arrive after the state loop has exited.
var errStopped = errors.New("meta: server stopped")

// ErrServerClosed is returned by [Server.Run] after [Server.Close] or [Server.Shutdown], or
// once Run's context ended. It is [rpc.ErrServerClosed]: the rpc and replica servers return
// the same value.
var ErrServerClosed = rpc.ErrServerClosed

// Server is a meta server: it holds the cluster map (tables, partition placement, ballots),
// tracks replica servers' liveness from their syncs, and answers the Pegasus meta RPCs, the
// replica servers' [cluster.RPCConfigSync] and remote commands, on one port that also serves
// HTTP. The meta servers form a raft group that replicates the cluster map; only its leader
// serves, the others answer with where the leader is. The cluster map is owned by a single
// goroutine started by Run; every RPC is a request to it. Create it with [New], then call
// Run once; stop it with Close (immediate) or Shutdown (graceful), from any goroutine.
type Server struct {
	cfg     Config
	lg      *slog.Logger
	rpc     *rpc.Server
	cmds    *remotecmd.Commands
	m       *machine
	raftLog *raftlog.Log
	raft    *raftNode

	reqs     chan request
	loopDone chan struct{}
	settings *Settings
	http     *httpapi.Mux
	console  *console.Console

	run     lifecycle.Runner
	stopErr error // what stopping met (the raft log's close); set before run.Finish

	// reported is closed, and replaced, each time a replica server's report was applied:
	// what a create waiting for its table to be ready waits on (see waitTableReady).
	reportMu struct {
		sync.Mutex
		reported chan struct{}
	}
}

// request is a function to run on the state goroutine; done is closed after it ran.
type request struct {
	fn   func()
	done chan struct{}
}

// New opens the listener and restores the meta's state from cfg.DataDir, so Addr works at
// once.
func New(cfg Config) (*Server, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := config.Store(cfg.fields()...); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	settings := cfg.Settings
	if cfg.BlockServices == nil {
		bs, err := blockservice.FromConfig(settings.Registry())
		if err != nil {
			return nil, fmt.Errorf("meta: %w", err)
		}
		cfg.BlockServices = bs
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("meta: data dir: %w", err)
	}

	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("meta: listen: %w", err)
		}
	}
	if cfg.Advertise == "" {
		cfg.Advertise = ln.Addr().String()
		if err := cluster.CheckAdvertise(cfg.Advertise); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("meta: listening on %s: %w", ln.Addr(), err)
		}
	}
	if len(cfg.Metas) == 0 && !cfg.Join {
		cfg.Metas = []string{cfg.Advertise}
	}
	if err := validateMetas(cfg); err != nil {
		_ = ln.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, reqs: make(chan request), loopDone: make(chan struct{}), settings: settings}
	s.lg = cfg.Logger.With("addr", cfg.Advertise)
	durability, err := raftlog.ParseDurability(cfg.RaftLogDurability)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("meta: %w", err)
	}
	logOpts := raftlog.DefaultOptions
	logOpts.Durability, logOpts.SyncInterval = durability, cfg.RaftLogSyncInterval
	rl, err := raftlog.OpenOptions(filepath.Join(cfg.DataDir, raftDir), s.lg, logOpts)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("meta: %w", err)
	}
	if s.raft, err = openRaft(cfg, s.lg, rl); err != nil {
		_ = rl.Close()
		_ = ln.Close()
		return nil, err
	}
	s.raftLog = rl
	auth, err := settings.Auth.Authenticator(cfg.Auth, s.lg)
	if err == nil {
		err = settings.ACL.CheckToken()
	}
	if err != nil {
		_ = rl.Close()
		_ = ln.Close()
		return nil, fmt.Errorf("meta: %w", err)
	}
	// The HTTP API is built once the state exists, below; nothing is served before Run.
	rs, err := rpc.NewServer(rpc.ServerConfig{Listener: ln, Logger: cfg.Logger, Limits: settings.Network.Limits(), Secret: cfg.Secret, Auth: auth,
		TLS: cfg.TLS, MandatoryTLS: cfg.MandatoryTLS,
		HTTP: settings.ACL.GuardHTTP(acl.MutatingHTTP, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.http.ServeHTTP(w, r) }))})
	if err != nil {
		_ = rl.Close()
		_ = ln.Close()
		return nil, fmt.Errorf("meta: %w", err)
	}
	s.rpc = rs
	s.m = newMachine(s.cfg, s.lg, s.raft, s.raft.latest.Load())
	ccfg := console.Config{Source: s, Self: s.cfg.Advertise, Logger: s.lg, Now: s.cfg.Now}
	if cfg.Secret != nil && cfg.MandatoryTLS {
		// Plaintext from a client would be refused: the samples go as peer traffic.
		creds := &rpc.PeerCredentials{Secret: cfg.Secret, Addr: s.cfg.Advertise}
		ccfg.Dial = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return rpc.DialPeer(ctx, addr, creds, rpc.DefaultDialTimeout)
		}
	}
	s.console = console.New(ccfg)
	s.http = s.httpAPI()

	s.cmds = remotecmd.New(remotecmd.Info{Role: "meta", Address: s.cfg.Advertise, Secured: cfg.Secret != nil, SuperUser: settings.ACL.SuperOnly,
		Version: s.cfg.Version, StartTime: s.m.startTime, Now: s.cfg.Now})
	s.registerMemberCommands()
	s.registerLBCommands()

	handle := func(name string, serve func(ctx context.Context, args idl.Value) idl.Value, refuse func(idl.ErrorCode, string) idl.Value) {
		rs.Handle(name, func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
			v, code := s.serve(ctx, func(ctx context.Context) idl.Value { return serve(ctx, req.Args) }, refuse)
			return forClient(req.Header, v), code
		})
	}
	handle(idl.RPCQueryConfig, func(_ context.Context, a idl.Value) idl.Value {
		return s.m.queryConfig(a.(*idl.QueryCfgRequest))
	}, refuseQueryConfig)
	rs.Handle(idl.RPCCreateApp, s.serveCreateApp)
	handle(idl.RPCDropApp, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.dropApp(ctx, a.(*idl.DropAppRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.DropAppResponse{Err: e} })
	handle(idl.RPCListApps, func(_ context.Context, a idl.Value) idl.Value {
		return s.m.listApps(a.(*idl.ListAppsRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value {
		return &idl.ListAppsResponse{Err: e, Infos: []idl.AppInfo{}}
	})
	handle(idl.RPCListNodes, func(_ context.Context, a idl.Value) idl.Value {
		return s.m.listNodes(a.(*idl.ListNodesRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value {
		return &idl.ListNodesResponse{Err: e, Infos: []idl.NodeInfo{}}
	})
	handle(idl.RPCClusterInfo, func(context.Context, idl.Value) idl.Value {
		return s.m.clusterInfo(s.raft.status.Load().voters)
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.ClusterInfoResponse{Err: e} })
	handle(idl.RPCUpdateAppEnv, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.updateAppEnv(ctx, a.(*idl.UpdateAppEnvRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.UpdateAppEnvResponse{Err: e} })
	s.registerOps(handle)
	rs.Handle(idl.RPCRecallApp, s.recallApp)
	s.registerDupHandlers(handle)
	handle(idl.RPCStartSplit, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.startSplit(ctx, a.(*idl.StartPartitionSplitRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.StartPartitionSplitResponse{Err: e} })
	handle(idl.RPCQuerySplit, func(_ context.Context, a idl.Value) idl.Value {
		return s.m.querySplit(a.(*idl.QuerySplitRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value {
		return &idl.QuerySplitResponse{Err: e, Status: map[int32]int32{}}
	})
	handle(idl.RPCControlSplit, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.controlSplit(ctx, a.(*idl.ControlSplitRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.ControlSplitResponse{Err: e} })
	handle(idl.RPCControlMeta, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.controlMeta(ctx, a.(*idl.MetaControlRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value {
		return &idl.MetaControlResponse{Err: e, OldLevel: int32(idl.MetaLevelInvalid)}
	})
	handle(idl.RPCProposeBalance, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.proposeBalancer(ctx, a.(*idl.BalancerRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.BalancerResponse{Err: e} })
	rs.Handle(cluster.RPCDecommission, s.serveDecommission)
	rs.Handle(cluster.RPCConfigSync, s.configSync)
	rs.Handle(idl.RPCCLICall, s.cmds.Handler())
	// Inline: receive never blocks, the messages of a peer keep their order, and a Shutdown
	// keeps taking them while the requests in flight wait for their commit.
	rs.HandleInline(idl.RPCMetaRaft, s.raft.tr.HandleRPC)
	// What only the cluster's own servers send: refused from anyone else when the cluster
	// has a secret.
	rs.RequirePeer(idl.RPCMetaRaft, cluster.RPCConfigSync, idl.RPCDuplicationSync)
	// Access control, last: every route registered above goes through it.
	rs.Wrap(s.checkACL)
	return s, nil
}

// refuseQueryConfig is query_cfg's answer from a meta that cannot serve: with the leader's
// address as the primary of the one partition, when it is known (protocol.md §6.2).
func refuseQueryConfig(e idl.ErrorCode, leader string) idl.Value {
	resp := &idl.QueryCfgResponse{Err: e}
	if leader == "" {
		return resp
	}
	n, err := newNode(leader)
	if err != nil {
		return resp
	}
	resp.Partitions = []idl.PartitionConfiguration{{
		Primary:       n.rpcAddr,
		HPPrimary:     idl.Some(n.hostPort),
		Secondaries:   []idl.RPCAddress{},
		LastDrops:     []idl.RPCAddress{},
		HPSecondaries: idl.Some([]idl.HostPort{}),
		HPLastDrops:   idl.Some([]idl.HostPort{}),
	}}
	return resp
}

func validateSpecs(specs []TableSpec) error {
	seen := make(map[string]bool, len(specs))
	for _, t := range specs {
		switch {
		case t.Name == "":
			return errors.New("meta: initial table without a name")
		case seen[t.Name]:
			return fmt.Errorf("meta: initial table %q listed twice", t.Name)
		case t.Partitions <= 0 || t.Partitions > MaxPartitionCount:
			return fmt.Errorf("meta: initial table %q: partition count %d out of range", t.Name, t.Partitions)
		case t.Replicas < MinReplicaCount || t.Replicas > MaxReplicaCount:
			return fmt.Errorf("meta: initial table %q: replica count %d out of [%d, %d]", t.Name, t.Replicas, MinReplicaCount, MaxReplicaCount)
		}
		seen[t.Name] = true
	}
	return nil
}

// validateMetas checks the meta list: ip:port addresses, distinct raft ids, and this meta
// among them unless it joins an existing group.
func validateMetas(cfg Config) error {
	ids := make(map[uint64]string, len(cfg.Metas))
	for _, a := range cfg.Metas {
		if _, err := netip.ParseAddrPort(a); err != nil {
			return fmt.Errorf("meta: meta server address %q: want ip:port", a)
		}
		if prev, ok := ids[cluster.MemberID(a)]; ok {
			return fmt.Errorf("meta: meta servers %q and %q listed twice or with the same raft id", prev, a)
		}
		ids[cluster.MemberID(a)] = a
	}
	if !cfg.Join && ids[cluster.MemberID(cfg.Advertise)] != cfg.Advertise {
		return fmt.Errorf("meta: the meta list %v does not include this meta (%s); list it, or start it with Join to add it to an existing group",
			cfg.Metas, cfg.Advertise)
	}
	return nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.rpc.Addr().String() }

// RPCMetrics returns a snapshot of the counters of the server's RPC port (peer
// authentication included). Safe for concurrent use.
func (s *Server) RPCMetrics() rpc.ServerMetrics { return s.rpc.Metrics() }

// RaftRefused returns how many raft messages were dropped because their sender is not a
// member of the metas' group. Safe for concurrent use.
func (s *Server) RaftRefused() int64 { return s.raft.nonMember.Load() }

// Advertise returns the address the server reports to others.
func (s *Server) Advertise() string { return s.cfg.Advertise }

// Commands returns the server's remote commands, so callers can register more.
func (s *Server) Commands() *remotecmd.Commands { return s.cmds }

// Leader returns the address of the metas' leader as this meta knows it ("" when unknown),
// and whether this meta is that leader and ready to serve. Safe for concurrent use.
func (s *Server) Leader() (addr string, serving bool) {
	st := s.raft.status.Load()
	return st.leader, st.ready
}

// LeaderChanged returns a channel that is closed when what [Server.Leader] reports may have
// changed. Call it before Leader to miss no change. Safe for concurrent use.
func (s *Server) LeaderChanged() <-chan struct{} { return s.raft.watch() }

// Run serves until the server is closed or shut down, and returns [ErrServerClosed] once
// every goroutine of the server has exited. The end of ctx closes the server as Close does.
// Any other error means serving failed (the listener, or the raft log on disk); the server is
// then stopped too. Run may be called once; after Close or Shutdown it returns
// ErrServerClosed at once.
func (s *Server) Run(ctx context.Context) error {
	if err := s.run.Start(); err != nil {
		return err
	}
	defer s.run.Finish()
	// The raft group and the state loop outlive the RPC server: a Shutdown lets the requests
	// in flight finish, and they need both.
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	var (
		wg      sync.WaitGroup
		raftErr error
	)
	wg.Go(func() {
		if raftErr = s.raft.run(loopCtx); raftErr != nil {
			_ = s.rpc.Close()
		}
	})
	wg.Go(func() {
		defer close(s.loopDone)
		s.loop(loopCtx)
	})
	wg.Go(func() { s.driveOps(loopCtx) })
	wg.Go(func() { s.runDupDriver(loopCtx) })
	s.console.Start(ctx)
	s.lg.Info("meta server started", "cluster", s.cfg.ClusterName, "metas", s.raft.status.Load().voters)
	err := s.rpc.Run(ctx)
	stopLoops()
	s.console.Close() // joins the console's sampler
	wg.Wait()
	s.release()
	s.lg.Info("meta server stopped")
	return lifecycle.RunResult(err, raftErr, s.stopErr)
}

// Close stops the server at once: the listener and every connection close, requests in
// flight fail, the raft group and the state loop stop, the raft log closes. It returns once
// every goroutine of the server has exited, with the error closing the raft log met, if any.
// Safe to call more than once and concurrently with Run and Shutdown.
func (s *Server) Close() error {
	_ = s.rpc.Close()
	return s.stop()
}

// Shutdown stops the server gracefully: it takes no new connection or request and lets the
// requests in flight finish (or fail once ctx ends: Shutdown then returns ctx's error), then
// stops the raft group and the state loop and closes the raft log. It returns once every
// goroutine of the server has exited. Safe to call more than once and concurrently with Run
// and Close.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.rpc.Shutdown(ctx)
	return errors.Join(err, s.stop())
}

// stop waits for Run to have stopped everything, or does it itself when Run never started.
func (s *Server) stop() error {
	s.run.Stop(s.release)
	<-s.run.Done()
	return s.stopErr
}

// release closes what New opened, once the RPC server and the goroutines are stopped.
func (s *Server) release() {
	s.console.Close()
	_ = s.raft.tr.Close()
	if err := s.raftLog.Close(); err != nil {
		s.stopErr = fmt.Errorf("meta: close raft log: %w", err)
	}
}

// loop owns the cluster map: it runs requests one at a time and, between them, follows the
// raft group (taking over when this meta becomes the leader) and does the periodic work of
// the leader (failure detection, purging expired dropped tables).
func (s *Server) loop(ctx context.Context) {
	tick := time.NewTicker(max(min(s.cfg.NodeGrace/4, time.Second), time.Millisecond))
	defer tick.Stop()
	for {
		changed := s.raft.watch()
		select {
		case r := <-s.reqs:
			r.fn()
			close(r.done)
		case <-tick.C:
			s.periodic(ctx)
		case <-changed:
			s.periodic(ctx)
		case <-ctx.Done():
			return
		}
	}
}

// periodic catches up with the raft group and, on the leader, with the clock.
func (s *Server) periodic(ctx context.Context) {
	if !s.follow() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	s.m.refresh()
	s.m.purgeExpired(ctx)
	if s.m.level() >= idl.MetaLevelSteady {
		s.m.replaceLost(ctx)
	}
	s.m.finishRecalls(ctx)
	s.m.persistProgress(ctx, false)
	s.m.driveSplits(ctx)
	s.m.balance(ctx)
}

// follow brings the machine in line with the raft group: it takes over when this meta became
// the ready leader, adopts mutations applied meanwhile, and stops leading when it no longer
// is. It reports whether this meta serves.
func (s *Server) follow() bool {
	st := s.raft.status.Load()
	if !st.ready {
		if s.m.leading {
			s.m.stepDown()
		}
		return false
	}
	latest := s.raft.latest.Load()
	if !s.m.leading || s.m.term != st.term {
		s.m.takeOver(st.term, latest)
	} else {
		s.m.adopt(latest)
	}
	return true
}

// do runs fn on the state goroutine and waits for it. It fails when ctx ends before the
// loop took the request, or when the loop has exited.
func (s *Server) do(ctx context.Context, fn func()) error {
	r := request{fn: fn, done: make(chan struct{})}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.loopDone:
		return errStopped
	}
	<-r.done // a request the loop took always runs to the end
	return nil
}

// refusal returns why this meta cannot serve now ("" when it can) and the leader to name.
func (s *Server) refusal() (idl.ErrorCode, string) {
	st := s.raft.status.Load()
	switch {
	case st.ready:
		return "", ""
	case st.isLeader:
		return errCode(wire.ErrServiceNotActive), ""
	}
	return errCode(wire.ErrForwardToOthers), st.leader
}

// serve runs fn on the state goroutine, when this meta is the leader, and returns its reply
// for the RPC layer. Otherwise the reply is refuse's: ERR_FORWARD_TO_OTHERS naming the
// leader if known, or ERR_SERVICE_NOT_ACTIVE from a leader that is not ready yet; the
// envelope is ERR_OK either way, as Pegasus answers (protocol.md §6.2).
func (s *Server) serve(ctx context.Context, fn func(context.Context) idl.Value, refuse func(idl.ErrorCode, string) idl.Value) (idl.Value, wire.Code) {
	if code, leader := s.refusal(); code != "" {
		return refuse(code, leader), wire.OK
	}
	var v idl.Value
	err := s.do(ctx, func() {
		if !s.follow() {
			v = refuse(s.refusal())
			return
		}
		s.m.refresh()
		s.m.purgeExpired(ctx)
		v = fn(ctx)
	})
	if err != nil {
		return nil, wire.ErrServiceNotActive
	}
	return v, wire.OK
}

// serveCreateApp serves RPC_CM_CREATE_APP (protocol.md §6.3). Pegasus replies once the table
// is registered, and clients then poll its configuration until every partition has a
// primary (and, for the official clients, all its secondaries). This meta replies once the
// table is ready, or after [Config].CreateWait, or half the client's timeout (whichever is
// first): the poll that follows finds it ready at once, with each partition's intended
// primary, the placement's first member, elected first (package replica), so no leadership
// change follows the create.
func (s *Server) serveCreateApp(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	q := req.Args.(*idl.CreateAppRequest)
	v, code := s.serve(ctx, func(ctx context.Context) idl.Value { return s.m.createApp(ctx, q) },
		func(e idl.ErrorCode, _ string) idl.Value { return &idl.CreateAppResponse{Err: e} })
	if r, ok := v.(*idl.CreateAppResponse); ok && code == wire.OK && r.Err == errCode(wire.OK) {
		s.waitTableReady(ctx, r.AppID, s.readyWait(req.Header), "create")
	}
	return forClient(req.Header, v), code
}

// readyWait is how long a reply that waits for its table to be ready (a create, a recall)
// waits at most: [Config].CreateWait, or half the client's timeout if that is shorter.
func (s *Server) readyWait(h wire.Header) time.Duration {
	wait := *s.cfg.CreateWait
	if t := time.Duration(h.ClientTimeout) * time.Millisecond; t > 0 {
		wait = min(wait, t/2)
	}
	return wait
}

// waitTableReady waits until table appID is ready ([machine.tableReady]), for at most wait
// (none if it is not positive) and until ctx ends, or this meta stops leading. It rechecks
// after each replica server's report. what names the reply that waits, for the log.
func (s *Server) waitTableReady(ctx context.Context, appID int32, wait time.Duration, what string) {
	if wait <= 0 {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	since := s.cfg.Now()
	for {
		reported := s.nextReport()
		ready := true
		if err := s.do(ctx, func() { ready = !s.follow() || s.m.tableReady(appID, since) }); err != nil || ready {
			return
		}
		select {
		case <-reported:
		case <-timer.C:
			s.lg.Info("table not ready yet; the reply goes", "rpc", what, "app_id", appID, "waited", wait)
			return
		case <-ctx.Done():
			return
		}
	}
}

// nextReport returns a channel closed once the next replica server's report is applied.
func (s *Server) nextReport() <-chan struct{} {
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	if s.reportMu.reported == nil {
		s.reportMu.reported = make(chan struct{})
	}
	return s.reportMu.reported
}

// noteReport wakes up the waiters of nextReport.
func (s *Server) noteReport() {
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	if s.reportMu.reported != nil {
		close(s.reportMu.reported)
		s.reportMu.reported = nil
	}
}

// configSync serves a replica server's [cluster.SyncRequest].
func (s *Server) configSync(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	var sr cluster.SyncRequest
	if err := cluster.Decode(req.Args.(*idl.Blob), &sr); err != nil {
		s.lg.Warn("bad config sync", "remote", req.Remote.String(), "err", err)
		return nil, wire.ErrInvalidParameters
	}
	if req.Peer != "" && sr.Node != req.Peer {
		// A member reports for itself only: the address it reports is the one its
		// connection authenticated as.
		s.lg.Warn("config sync refused: node is not the connection's peer", "node", sr.Node, "peer", req.Peer)
		return nil, wire.ErrUnauthenticated
	}
	var (
		resp *cluster.SyncResponse
		code wire.Code
	)
	refuse := func(e idl.ErrorCode, leader string) idl.Value {
		resp, code = &cluster.SyncResponse{Err: string(e), Leader: leader, Assignments: []cluster.Assignment{}}, wire.OK
		return nil
	}
	if _, c := s.serve(ctx, func(ctx context.Context) idl.Value {
		resp, code = s.m.sync(ctx, &sr)
		return nil
	}, refuse); c != wire.OK {
		return nil, c
	}
	s.noteReport()
	if code != wire.OK {
		return nil, code
	}
	return cluster.Encode(resp), wire.OK
}
