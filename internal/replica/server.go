package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/acl"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/durable"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/lifecycle"
	"github.com/gopegasus/pegasus/internal/metaclient"
	"github.com/gopegasus/pegasus/internal/raftlog"
	"github.com/gopegasus/pegasus/internal/raftnet"
	"github.com/gopegasus/pegasus/internal/remotecmd"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/storage"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Limits.
const (
	// MaxWriteSize is Pegasus's max_allowed_write_size: larger write requests are refused
	// with ERR_INVALID_DATA.
	MaxWriteSize = 1 << 20
)

// ErrServerClosed is returned by [Server.Run] after [Server.Close] or [Server.Shutdown], or
// once Run's context ended. It is [rpc.ErrServerClosed]: the rpc and meta servers return the
// same value.
var ErrServerClosed = rpc.ErrServerClosed

// Server is a replica server: it hosts the partition replicas the meta leader assigns, each
// a raft group member with its own store, and serves the rrdb RPCs on them. Create it with
// [New], then call Run once; stop it with Close (immediate) or Shutdown (graceful), from any
// goroutine.
type Server struct {
	cfg     Config
	lg      *slog.Logger
	rpc     *rpc.Server
	addr    string
	started time.Time
	rlog    *raftlog.Log
	cache   *pebble.Cache // shared by the partitions' stores
	// fileCache holds the partitions' open table files, at most fileCacheFiles of them.
	fileCache *pebble.FileCache
	// compactions grants the automatic compactions of the partitions' stores, with one
	// goroutine for all of them.
	compactions *storage.Compactions
	// parking closes the Pebble databases of idle stores until their next use, and keeps
	// at most [replication] max_open_stores open (nil: that and store_park_idle_seconds are
	// 0).
	parking   *storage.Parking
	transport *raftnet.Transport

	mu    sync.RWMutex
	parts map[idl.GPID]*partition
	// placement is the last whole answer of a meta sync, whose placement part a later
	// answer may leave out as unchanged (sync goroutine only; cluster.PlacementHash).
	placement *cluster.SyncResponse
	// syncsUnchanged counts the sync answers that left the placement out as unchanged.
	syncsUnchanged atomic.Int64

	syncNow chan struct{}
	// raftRefused counts the raft messages (snapshots included) dropped because their
	// sender was not who it claimed or not a member of the message's group.
	raftRefused atomic.Int64
	// unknownSync is when a raft message for a partition not here last made the server
	// report at once (unix nanoseconds; see receiveRaft).
	unknownSync atomic.Int64
	// cutOff drops every partition raft message this server sends or receives (see
	// CutOffPeers).
	cutOff atomic.Bool
	// quiesce is the setting [replication] quiesce: idle groups stop ticking; live is the
	// failure detection that replaces their heartbeats (quiesce.go), working from quiet.
	quiesce bool
	live    liveness
	quiet   quietIndex
	meta    *metaclient.Client // nil without meta servers
	// dropped are the tables dropped and recallable, as of the meta's last answer; held are
	// the replicas of dropped tables stopped with their data kept (dropped.go). Both belong
	// to the sync goroutine (and to Run before it starts).
	dropped map[int32]bool
	held    map[idl.GPID]bool
	// unassigned is when each replica held here was first missing from the meta's
	// assignments (sync goroutine only).
	unassigned map[idl.GPID]time.Time
	cmds       *remotecmd.Commands
	settings   *Settings
	stats      statsTable    // request statistics (metrics.go)
	scenarios  scenarioTable // tables' usage scenarios (envs.go)
	// compactMu serializes the decisions to start manual compactions (envs.go).
	compactMu sync.Mutex
	http      http.Handler
	dups      *dupManager // duplication shippers (dup.go)
	// snapshots sends the partitions' snapshot transfers; its connections close with the
	// server.
	snapshots *http.Client
	// peers are the connections to other replica servers that forwarded requests travel
	// on, and local the handlers that serve the requests forwarded here (forward.go).
	peers    *rpc.Pool
	local    map[string]rpc.HandlerFunc
	forwards forwardCounters
	// keys name each keyed client RPC's key, and splitRoutes the primaries of partitions
	// not hosted here, for the requests a split moved (splitforward.go).
	keys        map[string]requestKey
	splitRoutes splitRouteCache
	// throttleStats count what the throttling envs did (throttle.go).
	throttleStats throttleCounters
	// admission bounds the writes held under overload (admission.go).
	admission admission
	// scanOwners bound the scanner contexts per client connection (scanowners.go).
	scanOwners scanOwners
	// ops are the jobs of backups, restores and bulk loads (ops.go).
	ops opsJobs

	run lifecycle.Runner
	// flush is set by Shutdown: the stores are flushed before they close, so a restart
	// replays nothing from the raft log.
	flush atomic.Bool
	// disk counts what the disk did to the server (diskhealth.go).
	disk    diskCounters
	stopErr error // what closing the raft log met; set before run.Finish
}

// New opens the listener and the raft log; Addr works at once. Partitions found in DataDir
// are reopened when Run starts.
func New(cfg Config) (*Server, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := config.Store(cfg.fields()...); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	settings, lg := cfg.Settings, cfg.Logger
	if cfg.BlockServices == nil {
		bs, err := blockservice.FromConfig(settings.Registry())
		if err != nil {
			return nil, fmt.Errorf("replica: %w", err)
		}
		cfg.BlockServices = bs
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	s := &Server{
		cfg:         cfg,
		cache:       pebble.NewCache(cfg.BlockCacheSize),
		compactions: storage.NewCompactions(),
		fileCache:   pebble.NewFileCache(runtime.GOMAXPROCS(0), fileCacheFiles),
		started:     time.Now(),
		parts:       make(map[idl.GPID]*partition),
		syncNow:     make(chan struct{}, 1),
		dropped:     make(map[int32]bool),
		held:        make(map[idl.GPID]bool),
		unassigned:  make(map[idl.GPID]time.Time),
	}
	s.settings = settings
	s.quiesce = settings.Quiesce.Get()
	idle, maxOpen := settings.StoreParkIdleS.Get(), settings.MaxOpenStores.Get()
	if idle > 0 || maxOpen > 0 {
		s.parking = storage.NewParking(storage.ParkingOptions{Idle: time.Duration(idle) * time.Second, MaxOpen: int(maxOpen)})
	}
	s.ops.init(*cfg.BackupRateMB)
	// Snapshot transfers between replica servers, then the HTTP API (built below, once the
	// address is known; nothing is served before Run). Pegasus's paths are matched after
	// its own normalisation, so no http.ServeMux (which redirects unclean paths) is used.
	httpHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == snapshotPath {
			s.rpc.RefusePeerless(http.HandlerFunc(s.serveSnapshot)).ServeHTTP(w, r)
			return
		}
		s.http.ServeHTTP(w, r)
	})
	auth, err := settings.Auth.Authenticator(cfg.Auth, lg)
	if err == nil {
		err = settings.ACL.CheckToken()
	}
	if err != nil {
		s.releaseCaches()
		return nil, fmt.Errorf("replica: %w", err)
	}
	srv, err := rpc.NewServer(rpc.ServerConfig{Listen: cfg.Listen, Listener: cfg.Listener, Logger: lg,
		HTTP: settings.ACL.GuardHTTP(acl.MutatingHTTP, httpHandler), Limits: settings.Network.Limits(), Secret: cfg.Secret, Auth: auth,
		TLS: cfg.TLS, MandatoryTLS: cfg.MandatoryTLS})
	if err != nil {
		s.releaseCaches()
		return nil, err
	}
	s.rpc = srv
	s.addr = cfg.Advertise
	if s.addr == "" {
		s.addr = srv.Addr().String()
		if err := cluster.CheckAdvertise(s.addr); err != nil {
			_ = srv.Close()
			s.releaseCaches()
			return nil, fmt.Errorf("replica: listening on %s: %w", s.addr, err)
		}
	}
	// With a secret, every connection to another server authenticates as this one.
	var peerConn rpc.ConnConfig
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true // transfers are rare and long: no idle connection to keep
	if cfg.Secret != nil {
		creds := &rpc.PeerCredentials{Secret: cfg.Secret, Addr: s.addr}
		peerConn.Peer = creds
		tr.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return rpc.DialPeer(ctx, addr, creds, rpc.DefaultDialTimeout)
		}
	}
	s.snapshots = &http.Client{Transport: tr}
	fwd := peerConn
	fwd.CallTimeout = forwardCallTimeout
	s.peers = rpc.NewPool(fwd)
	s.lg = lg.With("node", s.addr)
	s.dups = newDupManager(s)
	if s.transport, err = raftnet.New(raftnet.Config{Addr: s.addr, RPCName: idl.RPCRaft, Handler: s.receiveRaft, Logger: s.lg, Conn: peerConn,
		MaxQueueBytes: int64(settings.RaftQueueBytes.Get())}); err != nil {
		_ = srv.Close()
		s.releaseCaches()
		return nil, fmt.Errorf("replica: %w", err)
	}
	durability, err := raftlog.ParseDurability(cfg.RaftLogDurability)
	if err != nil {
		_ = srv.Close()
		s.releaseCaches()
		return nil, fmt.Errorf("replica: %w", err)
	}
	logOpts := raftlog.Options{
		Window: raftlog.DefaultOptions.Window, Delay: *cfg.CommitDelay, Siblings: cfg.CommitSiblings,
		Durability: durability, SyncInterval: cfg.RaftLogSyncInterval}
	if cfg.Faults != nil {
		logOpts.Faults = cfg.Faults
	}
	rl, err := raftlog.OpenOptions(filepath.Join(cfg.DataDir, "raftlog"), s.lg, logOpts)
	if err != nil {
		_ = srv.Close()
		s.releaseCaches()
		return nil, err
	}
	s.rlog = rl
	if len(cfg.Metas) > 0 {
		s.meta = metaclient.New(metaclient.Config{Addrs: cfg.Metas, AttemptTimeout: metaAttemptTimeout, ConnConfig: peerConn})
	}
	s.cmds = remotecmd.New(remotecmd.Info{Role: "replica", Address: s.addr, Version: cfg.Version, StartTime: s.started, Secured: cfg.Secret != nil,
		SuperUser: settings.ACL.SuperOnly})
	s.http = cfg.HTTP
	if s.http == nil {
		s.http = s.httpAPI()
	}
	s.registerHandlers()
	s.registerHotkeyCommands()
	return s, nil
}

// RPCMetrics returns a snapshot of the counters of the server's RPC port (peer
// authentication included). Safe for concurrent use.
func (s *Server) RPCMetrics() rpc.ServerMetrics { return s.rpc.Metrics() }

// RaftRefused returns how many raft messages and snapshots were dropped because their
// sender was not who it claimed or not a member of the group. Safe for concurrent use.
func (s *Server) RaftRefused() int64 { return s.raftRefused.Load() }

// Addr returns the advertised address.
func (s *Server) Addr() string { return s.addr }

// Run reopens the partitions found in DataDir and serves until the server is closed or shut
// down, then returns [ErrServerClosed] once every goroutine of the server has exited and
// every store and the raft log are closed. The end of ctx closes the server as Close does.
// Any other error means serving failed (reopening a partition, or the listener); the server
// is then stopped too. Run may be called once; after Close or Shutdown it returns
// ErrServerClosed at once.
func (s *Server) Run(ctx context.Context) error {
	if err := s.run.Start(); err != nil {
		return err
	}
	defer s.run.Finish()
	// The partitions, the sync loop and the transport outlive the RPC server: a Shutdown
	// lets the requests in flight finish, and they need them.
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	if err := s.reopenPartitions(loopCtx); err != nil {
		_ = s.rpc.Close()
		s.release()
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.syncLoop(loopCtx) })
	wg.Go(func() { s.dups.run(loopCtx) })
	wg.Go(func() { s.runLiveness(loopCtx) })
	wg.Go(func() { s.hotkeyLoop(loopCtx) })
	wg.Go(func() { s.watchDisk(loopCtx) })
	err := s.rpc.Run(ctx)
	stopLoops()
	wg.Wait() // no partition is opened or dropped any more
	s.release()
	return lifecycle.RunResult(err, s.stopErr)
}

// (The disk's failure, which stops the server, is in diskhealth.go.)

// Close stops the server at once: the listener and every connection close, requests in
// flight fail, every partition stops (snapshot transfers included) and its store closes
// unflushed (a restart replays the raft log), then the raft log closes. It returns once every
// goroutine of the server has exited, with the error closing the raft log met, if any. Safe
// to call more than once and concurrently with Run and Shutdown.
func (s *Server) Close() error {
	_ = s.rpc.Close()
	return s.stop()
}

// Shutdown stops the server gracefully: it takes no new connection or request and lets the
// requests in flight finish (or fail once ctx ends: Shutdown then returns ctx's error), then
// stops every partition, flushes and closes its store, and closes the raft log. It returns
// once every goroutine of the server has exited. Safe to call more than once and
// concurrently with Run and Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.flush.Store(true)
	err := s.rpc.Shutdown(ctx)
	return errors.Join(err, s.stop())
}

// stop waits for Run to have stopped everything, or does it itself when Run never started.
func (s *Server) stop() error {
	s.run.Stop(s.release)
	<-s.run.Done()
	return s.stopErr
}

// release stops every partition and closes what New opened, once the RPC server, the sync
// loop and the transport's users are stopped.
func (s *Server) release() {
	s.mu.RLock()
	parts := make([]*partition, 0, len(s.parts))
	for _, p := range s.parts {
		parts = append(parts, p)
	}
	s.mu.RUnlock()
	for _, p := range parts {
		p.halt() // all at once; close waits for each
	}
	flush := s.flush.Load()
	for _, p := range parts {
		if err := p.close(flush); err != nil {
			p.lg.Warn("close store", "err", err)
		}
	}
	if s.meta != nil {
		_ = s.meta.Close()
	}
	_ = s.transport.Close()
	_ = s.peers.Close()
	s.snapshots.CloseIdleConnections()
	if err := s.rlog.Close(); err != nil {
		s.stopErr = fmt.Errorf("replica: close raft log: %w", err)
	}
	if err := s.diskFailure(); err != nil {
		s.stopErr = errors.Join(err, s.stopErr)
	}
	s.compactions.Close()
	s.releaseCaches()
}

// releaseCaches drops the server's references to the caches its stores share, and stops
// their parking.
func (s *Server) releaseCaches() {
	if s.parking != nil {
		s.parking.Close()
	}
	s.fileCache.Unref()
	s.cache.Unref()
}

// fileCacheFiles bounds the table files the partitions of a server keep open, as one LRU
// (a read of a table not among them opens it again).
const fileCacheFiles = 8192

// partitionDir is where a partition replica's store lives.
func (s *Server) partitionDir(pid idl.GPID) string {
	return filepath.Join(s.cfg.DataDir, pid.String())
}

// assignmentFile keeps the last assignment of a replica, so a restarted server serves its
// partitions before the meta answers.
const assignmentFile = "assignment.json"

func (s *Server) reopenPartitions(ctx context.Context) error {
	entries, err := os.ReadDir(s.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	for _, e := range entries {
		app, idx, ok := strings.Cut(e.Name(), ".")
		if !e.IsDir() || !ok {
			continue
		}
		a, err1 := strconv.Atoi(app)
		i, err2 := strconv.Atoi(idx)
		if err1 != nil || err2 != nil {
			continue
		}
		if isHeld(filepath.Join(s.cfg.DataDir, e.Name())) {
			s.held[idl.GPID{AppID: int32(a), PartitionIndex: int32(i)}] = true
			continue
		}
		raw, err := os.ReadFile(filepath.Join(s.cfg.DataDir, e.Name(), assignmentFile))
		if err != nil {
			if _, merr := readSplitMarker(filepath.Join(s.cfg.DataDir, e.Name())); merr == nil {
				continue // a split child's copy, which its parent's replica resumes
			}
			s.lg.Warn("partition directory without assignment, ignored", "dir", e.Name(), "err", err)
			continue
		}
		var as cluster.Assignment
		if err := json.Unmarshal(raw, &as); err != nil || as.AppID != int32(a) || as.PartitionIndex != int32(i) {
			s.lg.Warn("bad assignment file, ignored", "dir", e.Name(), "err", err)
			continue
		}
		if err := s.openPartition(ctx, as); err != nil {
			return err
		}
	}
	return nil
}

// openPartition creates or reopens a partition replica and starts its raft loop.
func (s *Server) openPartition(ctx context.Context, a cluster.Assignment) error {
	pid := idl.GPID{AppID: a.AppID, PartitionIndex: a.PartitionIndex}
	dir := s.partitionDir(pid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	if err := writeAssignment(dir, a); err != nil {
		return err
	}
	lg := s.lg.With("gpid", pid.String())
	ti := &tableInfo{partitionCount: a.PartitionCount, envs: a.Envs}
	db, err := s.openStore(pid, ti, lg)
	if err != nil {
		return err
	}
	p := &partition{
		s: s, pid: pid, lg: lg, db: db,
		log: s.rlog.Group(pid),
		id:  cluster.MemberID(s.addr),
		// Writers and readers block in their send (raftgroup.Submit) while the buffer is
		// full, and the loop's drain takes them from there as well: a small buffer batches
		// as a large one, and costs 8 bytes a slot for every replica, idle or not (1024
		// slots each were 16 KiB a replica, a third of an idle server's Go heap).
		proposeC:  make(chan *write, submitQueue),
		readC:     make(chan *readWait, submitQueue),
		recvC:     make(chan *raftpb.Message, 1024),
		installC:  make(chan *install),
		snapDoneC: make(chan snapDone),
		transferC: make(chan *transferRequest),
		splitC:    make(chan splitCheckpoint),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	p.quiesce.pokeC = make(chan struct{}, 1)
	p.setTable(a)
	p.view.Store(&leaderView{changed: make(chan struct{})})
	// A split child built here starts from the copy its parent's replica completed.
	var init *splitMarker
	if m, err := readSplitMarker(dir); err == nil && m.State == copyComplete {
		init = m
	}
	l, err := newLoop(p, a.Members, a.Join, init)
	if err != nil {
		_ = db.Close()
		return err
	}
	p.entries = l.ms
	if init != nil {
		if err := os.Remove(filepath.Join(dir, splitMarkerFile)); err != nil {
			lg.Warn("remove the split marker", "err", err)
		}
	}
	p.applied.Store(max(db.LastAppliedIndex(), l.truncAt))
	p.ownCount.Store(db.PartitionCount())
	l.publishVoters()
	s.mu.Lock()
	s.parts[pid] = p
	s.mu.Unlock()
	campaign := (!a.Join || init != nil) && (len(a.Members) == 0 || a.Members[0] == s.addr)
	p.wg.Go(func() { l.run(ctx, s.cfg.TickInterval, campaign) })
	lg.Info("partition opened", "members", a.Members, "applied", db.LastAppliedIndex())
	return nil
}

// submitQueue is the buffer of a replica's write and read queues to its loop.
const submitQueue = 64

// openConcurrency is how many partitions a replica server opens at once.
const openConcurrency = 8

// openPartitions opens the partitions of as, openConcurrency at a time, and returns once
// all are open or have failed (logged). Opening a store waits for several fsyncs: a new
// table of 64 partitions took seconds one at a time.
func (s *Server) openPartitions(ctx context.Context, as []cluster.Assignment) {
	sem := make(chan struct{}, openConcurrency)
	var wg sync.WaitGroup
	for _, a := range as {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.openPartition(ctx, a); err != nil {
				s.lg.Error("open assigned partition", "err", err)
			}
		})
	}
	wg.Wait()
}

// dataDir is where a partition replica's store lives.
func (s *Server) dataDir(pid idl.GPID) string { return filepath.Join(s.partitionDir(pid), "data") }

// openStore opens a partition replica's store.
func (s *Server) openStore(pid idl.GPID, ti *tableInfo, lg *slog.Logger) (*storage.DB, error) {
	return s.openStoreAt(s.dataDir(pid), pid, ti, lg)
}

// openStoreAt opens the store of partition pid in dir.
func (s *Server) openStoreAt(dir string, pid idl.GPID, ti *tableInfo, lg *slog.Logger) (*storage.DB, error) {
	db, err := storage.Open(storage.Options{
		Dir:       dir,
		ClusterID: *s.cfg.ClusterID,
		Logger:    lg,
		// Scans that validate the partition hash need the partition's place.
		PartitionIndex: pid.PartitionIndex,
		PartitionCount: ti.partitionCount,
		// The compaction concurrency follows the table's usage scenario.
		Pebble: s.pebbleOptions(pid),
		// The raft log is the durability source: the store keeps no WAL of its own, and
		// after a crash raft replays what its memtable lost (see doc.go, Restart).
		NoWAL:       true,
		Limits:      s.settings.Reads.limits(),
		Compactions: s.compactions,
		Parking:     s.parking,
	})
	if err != nil {
		return nil, fmt.Errorf("replica: open partition %v: %w", pid, err)
	}
	db.SetEnv(storeEnv(ti.envs))
	return db, nil
}

func writeAssignment(dir string, a cluster.Assignment) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	// A crash leaves either the old assignment or the new one; the partition directory's
	// own entry is synced too, since openPartition may just have created it.
	if err := durable.ReplaceFile(filepath.Join(dir, assignmentFile), raw); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	return nil
}

// takePartition removes a replica from the server's table, and returns it (nil if none).
func (s *Server) takePartition(pid idl.GPID) *partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[pid]
	delete(s.parts, pid)
	return p
}

// dropPartition stops a replica and deletes its data and raft state. Requests that found
// it before it left s.parts and still read its store finish first (the store's Close waits
// for them); later ones get ERR_OBJECT_NOT_FOUND.
func (s *Server) dropPartition(pid idl.GPID) {
	p := s.takePartition(pid)
	if p == nil {
		return
	}
	if err := p.close(false); err != nil {
		s.lg.Warn("close store of a dropped partition", "err", err)
	}
	if err := p.log.Remove(); err != nil {
		s.lg.Error("remove raft state", "err", err)
	}
	if err := os.RemoveAll(s.partitionDir(pid)); err != nil {
		s.lg.Error("remove partition data", "err", err)
	}
	s.lg.Info("partition dropped", "gpid", pid.String())
}

func (s *Server) partition(pid idl.GPID) *partition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.parts[pid]
}

// unknownSyncEvery bounds how often raft messages for partitions not here make the server
// report to the meta at once.
const unknownSyncEvery = 100 * time.Millisecond

// notifyMeta asks the sync loop to report at once (a leadership change).
func (s *Server) notifyMeta() {
	select {
	case s.syncNow <- struct{}{}:
	default:
	}
}

func (s *Server) syncLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SyncInterval)
	defer t.Stop()
	defer s.waitOps() // the jobs end with ctx
	for {
		s.syncOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.syncNow:
		}
	}
}

// syncOnce reports to the meta leader and applies its answer.
func (s *Server) syncOnce(ctx context.Context) {
	if s.meta == nil {
		return
	}
	req := cluster.SyncRequest{Node: s.addr, StartTime: s.started.Unix()}
	s.mu.RLock()
	for _, p := range s.parts {
		req.Replicas = append(req.Replicas, p.state())
	}
	s.mu.RUnlock()
	s.reportOps(&req)
	slices.SortFunc(req.Replicas, func(a, b cluster.ReplicaState) int {
		if a.AppID != b.AppID {
			return int(a.AppID - b.AppID)
		}
		return int(a.PartitionIndex - b.PartitionIndex)
	})
	if s.placement != nil {
		req.KnownAssignments = s.placement.AssignmentsHash
	}
	resp, err := s.callMeta(ctx, &req)
	if err != nil {
		if ctx.Err() == nil {
			s.lg.Debug("meta sync failed", "err", err)
		}
		return
	}
	switch {
	case resp.Unchanged:
		if s.placement == nil || resp.AssignmentsHash != s.placement.AssignmentsHash {
			// Not what was asked: the next sync asks for the whole answer.
			s.lg.Warn("meta sync: the answer left out a placement this server does not have")
			s.placement = nil
			return
		}
		resp.RestorePlacement(s.placement)
		s.syncsUnchanged.Add(1)
	case resp.AssignmentsHash != 0:
		resp.FillEnvs()
		s.placement = resp
	default: // a meta that does not hash its answers
		resp.FillEnvs()
		s.placement = nil
	}
	s.applyDrops(resp)
	assigned := make(map[idl.GPID]bool, len(resp.Assignments))
	var toOpen []cluster.Assignment
	for _, a := range resp.Assignments {
		pid := idl.GPID{AppID: a.AppID, PartitionIndex: a.PartitionIndex}
		assigned[pid] = true
		if s.dropped[a.AppID] {
			continue
		}
		if p := s.partition(pid); p != nil {
			p.setTable(a)
			continue
		}
		if s.holdForRestore(ctx, a) {
			continue
		}
		if _, ready := s.childInit(a); !ready {
			continue
		}
		if s.held[pid] {
			if err := s.unhold(pid); err != nil {
				s.lg.Error("reopen a recalled partition", "gpid", pid.String(), "err", err)
				continue
			}
		}
		toOpen = append(toOpen, a)
	}
	s.openPartitions(ctx, toOpen)
	// Manual compactions, once per table (each partition noted its requests in setTable).
	for app, envs := range resp.Envs {
		s.startCompactions(app, envs)
	}
	s.runOps(ctx, resp)
	s.collectGarbage(assigned, time.Now())
	s.dups.changed()
}

// collectGarbage deletes the replicas that have gone unassigned for the garbage grace: the
// meta placed their partitions elsewhere, and their groups went on without them.
func (s *Server) collectGarbage(assigned map[idl.GPID]bool, now time.Time) {
	s.mu.RLock()
	var garbage []idl.GPID
	for pid, p := range s.parts {
		if assigned[pid] || p.isLeader.Load() {
			delete(s.unassigned, pid)
			continue
		}
		since, ok := s.unassigned[pid]
		if !ok {
			s.unassigned[pid] = now
			continue
		}
		if now.Sub(since) >= s.cfg.GarbageGrace {
			garbage = append(garbage, pid)
		}
	}
	for pid := range s.unassigned {
		if s.parts[pid] == nil {
			delete(s.unassigned, pid) // dropped meanwhile
		}
	}
	s.mu.RUnlock()
	for _, pid := range garbage {
		s.lg.Warn("deleting a replica no longer assigned to this server", "gpid", pid.String(),
			"unassigned_for", now.Sub(s.unassigned[pid]).Round(time.Second))
		delete(s.unassigned, pid)
		s.dropPartition(pid)
	}
}

// Meta sync timing: an attempt at the presumed meta leader while others are known, and the
// whole call, after which the report is stale and the next one is due.
const (
	metaAttemptTimeout = 3 * time.Second
	metaSyncBudget     = 2 * metaAttemptTimeout
)

// callMeta sends a sync to the meta leader, trying the others (and following the leader
// hint) when it is not, within metaSyncBudget.
func (s *Server) callMeta(ctx context.Context, req *cluster.SyncRequest) (*cluster.SyncResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, metaSyncBudget)
	defer cancel()
	reply, err := metaclient.Call(ctx, s.meta, cluster.RPCConfigSync, cluster.Encode(req), syncStatus)
	if err != nil {
		return nil, err
	}
	return &reply.resp, nil
}

// syncReply is a meta's answer to a sync: a blob holding a JSON [cluster.SyncResponse],
// decoded as it arrives.
type syncReply struct {
	resp cluster.SyncResponse
	err  error // why the blob holds no SyncResponse
}

func (*syncReply) ThriftType() idl.Type { return idl.TypeStruct }

func (r *syncReply) Encode(e *idl.Encoder) { cluster.Encode(&r.resp).Encode(e) }

func (r *syncReply) Decode(d *idl.Decoder) {
	var b idl.Blob
	if b.Decode(d); d.Err() == nil {
		r.err = cluster.Decode(&b, &r.resp)
	}
}

// syncStatus reads a sync reply's error code and leader hint for the meta client.
func syncStatus(r *syncReply) metaclient.Status {
	if r.err != nil {
		return metaclient.Status{Err: r.err}
	}
	return metaclient.Status{Err: wire.CodeError(r.resp.Err), Leader: r.resp.Leader}
}

// SyncsUnchanged returns how many meta sync answers left the placement part out since the
// server started, because the server had it already (cluster.PlacementHash).
func (s *Server) SyncsUnchanged() int64 { return s.syncsUnchanged.Load() }

// RaftLogSyncs returns how many fsyncs the server's raft log has made since it started.
func (s *Server) RaftLogSyncs() int64 { return s.rlog.Syncs() }

// ForwardedRequests returns how many client requests for partitions this server did not lead
// it has forwarded to their leaders since it started (forward.go).
func (s *Server) ForwardedRequests() int64 { return s.forwards.forwarded.Load() }

// CutOffPeers, for fault-injection tests, drops (on) or delivers again (off) every raft
// message between this server's partitions and their peers, as a network partition between
// this server and the other replica servers would, while clients and the metas still reach
// it.
func (s *Server) CutOffPeers(on bool) { s.cutOff.Store(on) }

// SnapshotsInstalled returns how many snapshots this server's replicas have installed.
func (s *Server) SnapshotsInstalled() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, p := range s.parts {
		n += p.snapshots.Load()
	}
	return n
}

// SplitForwardedRequests returns how many client requests whose key a partition split moved
// to another partition this server has sent on to it since it started (splitforward.go).
func (s *Server) SplitForwardedRequests() int64 { return s.forwards.split.Load() }
