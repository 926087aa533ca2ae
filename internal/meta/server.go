package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/remotecmd"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Defaults and limits.
const (
	// DefaultNodeGrace is how long a replica server may stay silent before it is dead.
	DefaultNodeGrace = 10 * time.Second
	// DefaultClusterName is reported by cluster_info when Config.ClusterName is empty.
	DefaultClusterName = "gopegasus"
	// DefaultDropReserve is how long a dropped table is kept (and listed) before it is purged,
	// when the drop request does not say (Pegasus's hold_seconds_for_dropped_app).
	DefaultDropReserve = 7 * 24 * time.Hour
	// MinReplicaCount and MaxReplicaCount bound a table's replica count.
	MinReplicaCount = 1
	MaxReplicaCount = 5
	// MaxPartitionCount bounds a table's partition count.
	MaxPartitionCount = 1 << 16
)

// TableSpec is a table to create on a cluster's first start (see [Config].InitialTables).
type TableSpec struct {
	Name string
	// Partitions is the partition count, in [1, MaxPartitionCount].
	Partitions int32
	// Replicas is the replica count, in [MinReplicaCount, MaxReplicaCount].
	Replicas int32
}

// Config configures a [Server]. Zero values mean the documented defaults.
type Config struct {
	// Listen is the TCP address to serve RPCs and HTTP on, e.g. "127.0.0.1:0". Required
	// unless Listener is set.
	Listen string
	// Listener, if set, is used instead of listening on Listen; the server closes it.
	Listener net.Listener
	// Advertise is the "ip:port" reported to others (default: the listener's address, which
	// must then not be a wildcard address).
	Advertise string
	// DataDir holds the cluster map (cluster.json). Required; created if missing.
	DataDir string
	// Metas lists every meta server's address, as cluster_info reports them (default:
	// [Advertise]).
	Metas []string
	// NodeGrace is how long a replica server may go without a sync before it is considered
	// dead (default DefaultNodeGrace).
	NodeGrace time.Duration
	// InitialTables are created once, when the meta starts with no table in its storage, as
	// soon as enough replica servers are alive for the largest replica count. They are created
	// in name order (so Pegasus onebox's "stat" and "temp" get app ids 1 and 2), with app type
	// "pegasus" and no envs.
	InitialTables []TableSpec
	// ClusterName is reported by cluster_info (default DefaultClusterName).
	ClusterName string
	// Version is the software version the server reports (default "dev").
	Version string
	// Logger receives the server's logs (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now). Liveness, create and drop times use it.
	Now func() time.Time
}

// errStopped is returned to requests that arrive after the state loop has exited.
var errStopped = errors.New("meta: server stopped")

// Server is a meta server: it holds the cluster map (tables, partition placement, ballots),
// tracks replica servers' liveness from their syncs, and answers the Pegasus meta RPCs, the
// replica servers' [cluster.RPCConfigSync] and remote commands, on one port that also serves
// HTTP. The cluster map is owned by a single goroutine started by Run; every RPC is a request
// to it. Create it with [New], then call Run once.
type Server struct {
	cfg  Config
	lg   *slog.Logger
	rpc  *rpc.Server
	cmds *remotecmd.Commands
	m    *machine

	reqs     chan request
	loopDone chan struct{}
}

// request is a function to run on the state goroutine; done is closed after it ran.
type request struct {
	fn   func()
	done chan struct{}
}

// New opens the listener and loads the cluster map from cfg.DataDir, so Addr works at once.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" && cfg.Listener == nil {
		return nil, errors.New("meta: Config.Listen or Config.Listener is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("meta: Config.DataDir is required")
	}
	if cfg.NodeGrace <= 0 {
		cfg.NodeGrace = DefaultNodeGrace
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = DefaultClusterName
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := validateSpecs(cfg.InitialTables); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("meta: data dir: %w", err)
	}
	st := &fileStore{dir: cfg.DataDir}
	state, err := st.Load()
	if err != nil {
		return nil, err
	}

	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("meta: listen: %w", err)
		}
	}
	if cfg.Advertise == "" {
		ap, err := netip.ParseAddrPort(ln.Addr().String())
		if err != nil || ap.Addr().IsUnspecified() {
			_ = ln.Close()
			return nil, fmt.Errorf("meta: listening on %s: set Config.Advertise to an address others can reach", ln.Addr())
		}
		cfg.Advertise = ap.String()
	}
	s := &Server{cfg: cfg, reqs: make(chan request), loopDone: make(chan struct{})}
	rs, err := rpc.NewServer(rpc.ServerConfig{Listener: ln, HTTP: httpHandler{s}, Logger: cfg.Logger})
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("meta: %w", err)
	}
	s.rpc = rs
	if len(s.cfg.Metas) == 0 {
		s.cfg.Metas = []string{s.cfg.Advertise}
	}
	s.lg = cfg.Logger.With("addr", s.cfg.Advertise)
	s.m = newMachine(s.cfg, s.lg, st, state)

	s.cmds = remotecmd.New(remotecmd.Info{Role: "meta", Address: s.cfg.Advertise,
		Version: s.cfg.Version, StartTime: s.m.startTime, Now: s.cfg.Now})

	rs.Handle(idl.RPCQueryConfig, func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		q := req.Args.(*idl.QueryCfgRequest)
		return s.serve(ctx, func() idl.Value { return s.m.queryConfig(q) })
	})
	rs.Handle(idl.RPCCreateApp, func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		q := req.Args.(*idl.CreateAppRequest)
		return s.serve(ctx, func() idl.Value { return s.m.createApp(q) })
	})
	rs.Handle(idl.RPCDropApp, func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		q := req.Args.(*idl.DropAppRequest)
		return s.serve(ctx, func() idl.Value { return s.m.dropApp(q) })
	})
	rs.Handle(idl.RPCListApps, func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		q := req.Args.(*idl.ListAppsRequest)
		return s.serve(ctx, func() idl.Value { return s.m.listApps(q) })
	})
	rs.Handle(idl.RPCListNodes, func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		q := req.Args.(*idl.ListNodesRequest)
		return s.serve(ctx, func() idl.Value { return s.m.listNodes(q) })
	})
	rs.Handle(idl.RPCClusterInfo, func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		return s.serve(ctx, func() idl.Value { return s.m.clusterInfo() })
	})
	rs.Handle(idl.RPCUpdateAppEnv, func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		q := req.Args.(*idl.UpdateAppEnvRequest)
		return s.serve(ctx, func() idl.Value { return s.m.updateAppEnv(q) })
	})
	rs.Handle(cluster.RPCConfigSync, s.configSync)
	rs.Handle(idl.RPCCLICall, s.cmds.Handler())
	return s, nil
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

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.rpc.Addr().String() }

// Advertise returns the address the server reports to others.
func (s *Server) Advertise() string { return s.cfg.Advertise }

// Commands returns the server's remote commands, so callers can register more.
func (s *Server) Commands() *remotecmd.Commands { return s.cmds }

// Run serves until ctx ends, then returns once every goroutine of the server has exited. It
// returns a non-nil error only when serving failed.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(s.loopDone)
		s.loop(ctx)
	})
	s.lg.Info("meta server started", "cluster", s.cfg.ClusterName, "tables", len(s.m.state.Tables))
	err := s.rpc.Run(ctx)
	cancel()
	wg.Wait()
	s.lg.Info("meta server stopped")
	return err
}

// loop owns the cluster map: it runs requests one at a time and, between them, the periodic
// work (failure detection, purging expired dropped tables).
func (s *Server) loop(ctx context.Context) {
	tick := time.NewTicker(max(min(s.cfg.NodeGrace/4, time.Second), time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case r := <-s.reqs:
			// Catch up with the clock first, so every answer reflects liveness and expiry as of
			// now, whatever the tick interval.
			s.m.refresh()
			s.m.purgeExpired()
			r.fn()
			close(r.done)
		case <-tick.C:
			s.m.refresh()
			s.m.purgeExpired()
		case <-ctx.Done():
			return
		}
	}
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

// serve runs fn on the state goroutine and returns its reply for the RPC layer.
func (s *Server) serve(ctx context.Context, fn func() idl.Value) (idl.Value, wire.Code) {
	var v idl.Value
	if err := s.do(ctx, func() { v = fn() }); err != nil {
		return nil, wire.ErrServiceNotActive
	}
	return v, wire.OK
}

// configSync serves a replica server's [cluster.SyncRequest].
func (s *Server) configSync(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	var sr cluster.SyncRequest
	if err := cluster.Decode(req.Args.(*idl.Blob), &sr); err != nil {
		s.lg.Warn("bad config sync", "remote", req.Remote.String(), "err", err)
		return nil, wire.ErrInvalidParameters
	}
	var (
		resp *cluster.SyncResponse
		code wire.Code
	)
	if err := s.do(ctx, func() { resp, code = s.m.sync(&sr) }); err != nil {
		return nil, wire.ErrServiceNotActive
	}
	if code != wire.OK {
		return nil, code
	}
	return cluster.Encode(resp), wire.OK
}
