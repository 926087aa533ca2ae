package meta

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// submitter makes a mutation durable and applies it: the metas' raft group.
type submitter interface {
	// submit returns the mutation's result and the map right after it was applied.
	submit(ctx context.Context, op *mutation) (applyResult, error)
}

// machine is the meta server's state: the durable cluster map and the volatile view of the
// replica servers. It is not safe for concurrent use: only the server's loop goroutine
// touches it.
//
// Only the leader's machine serves. It takes over ([machine.takeOver]) once its raft group
// elected it and it applied everything committed before; from then on it changes the map
// only through the group, and adopts each applied map.
type machine struct {
	cfg       Config
	lg        *slog.Logger
	log       submitter
	startTime time.Time
	// syncSeed seeds the hashes of the syncs' placement parts (cluster.PlacementHash).
	syncSeed maphash.Seed

	// leading is set from takeOver to stepDown; term is the raft term it took over in.
	leading bool
	term    uint64

	state      *clusterMap
	stateIndex uint64 // the raft index state reflects
	// initialPending is true while the configured initial tables still have to be created.
	initialPending bool
	// nodes holds every replica server known: those in the map and those that synced since
	// this meta took over.
	nodes map[string]*node
	// progress and bulkReplicas are the long operations' soft state, from the replica
	// servers' reports (ops_state.go).
	progress     map[progressKey]int32
	bulkReplicas map[bulkReplicaKey]cluster.BulkLoadReport
	// changed is closed (and replaced) whenever the map or a replica server's report
	// changes, for the requests that wait for a long operation (see watch).
	changed chan struct{}
	// dups is the leader's memory of the duplications (dup.go).
	dups dupVolatile
	// lb are the balancer's controls the remote commands set (lbcommands.go).
	lb lbControls
}

// node is what the meta knows about one replica server.
type node struct {
	addr     string
	rpcAddr  idl.RPCAddress
	hostPort idl.HostPort
	alive    bool
	lastSync time.Time // zero: never synced since the meta started
	// startTime is the server's own start time (unix seconds) from its last sync.
	startTime int64
	// replicas is the server's last report, by partition.
	replicas map[idl.GPID]cluster.ReplicaState
}

func newMachine(cfg Config, lg *slog.Logger, log submitter, am *appliedMap) *machine {
	m := &machine{cfg: cfg, lg: lg, log: log, startTime: cfg.Now(), state: am.m, stateIndex: am.index,
		nodes: make(map[string]*node), changed: make(chan struct{}), lb: defaultLBControls(cfg),
		syncSeed: maphash.MakeSeed()}
	m.resetOps()
	m.dups.reset()
	return m
}

// watch returns a channel closed at the machine's next change (a new map, a replica
// server's report, a change of leadership). Read the state after calling it.
func (m *machine) watch() <-chan struct{} { return m.changed }

// notify wakes the watchers.
func (m *machine) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// takeOver starts serving as the leader of term, from the map am. Liveness is soft state:
// this meta has no syncs yet, so it starts every known replica server's clock now and
// considers it alive for a grace period from its own election. Declaring them dead at once
// would throw away healthy servers; the ones that are really gone miss the grace period as
// they would have with the previous leader. Which replica leads each partition is unknown
// until its server syncs (within a sync interval): partitions keep their persisted ballot
// and have no primary meanwhile.
func (m *machine) takeOver(term uint64, am *appliedMap) {
	m.leading, m.term = true, term
	m.state, m.stateIndex = am.m, am.index
	m.nodes = make(map[string]*node)
	m.resetOps()
	m.dups.reset()
	now := m.cfg.Now()
	m.notePlacementMembers()
	for _, addr := range m.state.Nodes {
		if m.nodes[addr] == nil {
			if n, err := newNode(addr); err == nil {
				m.nodes[addr] = n
			}
		}
	}
	for _, n := range m.nodes {
		n.alive, n.lastSync = true, now
	}
	m.initialPending = len(m.cfg.InitialTables) > 0 && !m.state.InitialTablesDone && len(m.state.Tables) == 0
	m.lg.Info("meta leader serving", "term", term, "index", am.index, "tables", len(m.state.Tables), "nodes", len(m.nodes))
	m.notify()
}

// stepDown stops serving: another meta leads, or none yet.
func (m *machine) stepDown() {
	m.leading = false
	m.nodes = make(map[string]*node)
	m.lg.Info("meta no longer the leader", "term", m.term)
	m.notify()
}

// adopt makes am the current map if it is newer.
func (m *machine) adopt(am *appliedMap) {
	if am.index <= m.stateIndex {
		return
	}
	changed := am.m != m.state
	m.state, m.stateIndex = am.m, am.index
	if changed {
		m.notePlacementMembers()
		m.notify()
	}
}

// newNode returns a node for addr, which must be "ip:port" with an IPv4 address (the only
// kind an rpc_address holds).
func newNode(addr string) (*node, error) {
	ra, err := idl.ParseRPCAddress(addr)
	if err != nil {
		return nil, err
	}
	ap := ra.AddrPort()
	return &node{addr: addr, rpcAddr: ra, hostPort: idl.NewHostPort(ap.Addr().String(), ap.Port())}, nil
}

// notePlacementMembers makes sure every placement member is a known node, so list_nodes
// shows the members that have not synced yet (after a restart, for example) as dead.
func (m *machine) notePlacementMembers() {
	for _, t := range m.state.Tables {
		for _, p := range t.Partitions {
			for _, addr := range p.Members {
				if m.nodes[addr] != nil {
					continue
				}
				n, err := newNode(addr)
				if err != nil {
					m.lg.Error("placement member is not an ip:port", "table", t.Name, "node", addr, "err", err)
					continue
				}
				m.nodes[addr] = n
			}
		}
	}
}

// refresh marks nodes dead whose last sync is older than the grace period.
func (m *machine) refresh() {
	now := m.cfg.Now()
	for _, n := range m.nodes {
		if n.alive && now.Sub(n.lastSync) >= m.cfg.NodeGrace {
			n.alive = false
			m.lg.Warn("replica server dead", "node", n.addr, "last_sync", n.lastSync)
		}
	}
}

// replaceLost moves the replicas of dead replica servers to live ones: for each partition
// with a dead member, a live server that does not host it yet (the least loaded) takes the
// dead member's place, and its replica joins the group; the partition's leader then adds it
// as a learner, promotes it once caught up and removes the lost one (package replica). A
// partition is only changed while a majority of its members is alive: otherwise no leader
// could carry out the change, and the data must wait for the lost servers to come back.
//
// The balancer's controls (lbcommands.go) hold it: nothing is replaced while too few
// servers are alive or while the moves per server are bounded to 0, a dead server's
// replicas wait for the assign delay after it was declared dead, and no replica goes to a
// black-listed server.
func (m *machine) replaceLost(ctx context.Context) {
	if m.lb.movesPerNode <= 0 || m.tooFewAlive() {
		return
	}
	var reps []memberReplace
	load, _ := m.load()
	alive := m.replicaTargets()
	now := m.cfg.Now()
	expired := func(a string) bool {
		n := m.nodes[a]
		return n == nil || !now.Before(n.lastSync.Add(m.cfg.NodeGrace+time.Duration(m.lb.assignDelayMS)*time.Millisecond))
	}
	for _, t := range m.state.Tables {
		if t.Status != idl.AppStatusAvailable {
			continue
		}
		for i, p := range t.Partitions {
			var dead []string
			for _, a := range p.Members {
				if n := m.nodes[a]; n == nil || !n.alive {
					dead = append(dead, a)
				}
			}
			if len(dead) == 0 || 2*(len(p.Members)-len(dead)) <= len(p.Members) || p.Ballot < 0 {
				continue // no majority to carry out the change, or a split child not started
			}
			if dead = slices.DeleteFunc(dead, func(a string) bool { return !expired(a) }); len(dead) == 0 {
				continue // the assign delay is not over
			}
			spare := ""
			for _, a := range alive {
				if slices.Contains(p.Members, a) {
					continue
				}
				if spare == "" || load[a] < load[spare] {
					spare = a
				}
			}
			if spare == "" {
				continue
			}
			load[spare]++
			reps = append(reps, memberReplace{GPID: idl.GPID{AppID: t.AppID, PartitionIndex: int32(i)}, Old: dead[0], New: spare})
		}
	}
	if len(reps) == 0 {
		return
	}
	if _, err := m.commit(ctx, &mutation{ReplaceMembers: reps}); err != nil {
		m.lg.Warn("replacing lost replicas failed; will retry", "err", err)
		return
	}
	for _, r := range reps {
		m.lg.Info("replica moved off a lost server", "gpid", r.GPID.String(), "from", r.Old, "to", r.New)
	}
}

// commit replicates op through the metas' group and adopts the map it gives. A mutation
// that would fail on the current map is answered at once, without a log entry. On error the
// current map is unchanged (but op may still be applied later: raft decides).
func (m *machine) commit(ctx context.Context, op *mutation) (result, error) {
	if res := m.state.clone().apply(op); res.Code != wire.OK {
		return res, nil
	}
	ar, err := m.log.submit(ctx, op)
	if err != nil {
		m.lg.Warn("cluster map change not committed", "err", err)
		return result{}, err
	}
	m.adopt(&ar.state)
	return ar.res, nil
}

// commitErrCode is the reply code for a change that could not be committed: its outcome is
// unknown when the leadership was lost or the wait ended, and clients retry on ERR_TIMEOUT.
func commitErrCode(err error) wire.Code {
	if errors.Is(err, errNotLeader) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return wire.ErrTimeout
	}
	return wire.ErrFileOperationFailed
}

// purgeExpired forgets dropped tables whose reserve period is over.
func (m *machine) purgeExpired(ctx context.Context) {
	now := m.cfg.Now().Unix()
	for _, t := range m.state.Tables {
		if t.Status == idl.AppStatusDropped && t.ExpireSecond <= now {
			if _, err := m.commit(ctx, &mutation{PurgeBefore: &now}); err == nil {
				m.lg.Info("purged expired dropped tables", "before", now)
			}
			return
		}
	}
}

// aliveNodes returns the addresses of the alive replica servers, sorted.
func (m *machine) aliveNodes() []string {
	var out []string
	for addr, n := range m.nodes {
		if n.alive {
			out = append(out, addr)
		}
	}
	slices.Sort(out)
	return out
}

// ballotOf maps a raft term to a ballot: at least 1, since a partition with a primary must
// never report ballot 0.
func ballotOf(term uint64) int64 {
	if term > math.MaxInt64 {
		return math.MaxInt64
	}
	return max(int64(term), 1)
}

// primaryOf returns the current primary of partition pidx of t: the alive member whose latest
// report says it leads the partition in the term that is the partition's ballot. The ballot
// is the highest term ever reported and saved, so a claim with a lower term is stale (a newer
// leader was seen since), and one with a higher term is not saved yet (the sync that brought
// it failed to persist it): neither is reported.
func (m *machine) primaryOf(t *table, pidx int32) (*node, bool) {
	p := &t.Partitions[pidx]
	gpid := idl.GPID{AppID: t.AppID, PartitionIndex: pidx}
	for _, addr := range p.Members {
		n := m.nodes[addr]
		if n == nil || !n.alive {
			continue
		}
		if rs, ok := n.replicas[gpid]; ok && rs.IsLeader && ballotOf(rs.Term) == p.Ballot {
			return n, true
		}
	}
	return nil, false
}

// partitionConfig derives the configuration of partition pidx of t.
//
// With a primary, the secondaries are the other voters of the partition's raft group as the
// primary reports them (the placement's members when it has not reported them), alive ones
// only: clients must not be sent to a dead one. A dead voter still in the group is listed in
// last_drops until the group removes it, so the configuration tells how many healthy copies
// the partition really has. Without a primary there are no secondaries either, as in Pegasus.
func (m *machine) partitionConfig(t *table, pidx int32) idl.PartitionConfiguration {
	p := &t.Partitions[pidx]
	pc := idl.PartitionConfiguration{
		PID:             idl.GPID{AppID: t.AppID, PartitionIndex: pidx},
		Ballot:          p.Ballot,
		MaxReplicaCount: t.ReplicaCount,
		Secondaries:     []idl.RPCAddress{},
		LastDrops:       []idl.RPCAddress{},
		HPSecondaries:   idl.Some([]idl.HostPort{}),
		HPLastDrops:     idl.Some([]idl.HostPort{}),
	}
	primary, ok := m.primaryOf(t, pidx)
	if !ok {
		return pc
	}
	pc.Primary = primary.rpcAddr
	pc.HPPrimary = idl.Some(primary.hostPort)
	voters := p.Members
	if rs := primary.replicas[pc.PID]; len(rs.Voters) > 0 {
		voters = rs.Voters
	}
	for _, addr := range voters {
		n := m.nodes[addr]
		switch {
		case n == nil || n == primary:
		case n.alive:
			pc.Secondaries = append(pc.Secondaries, n.rpcAddr)
			pc.HPSecondaries.V = append(pc.HPSecondaries.V, n.hostPort)
		default:
			pc.LastDrops = append(pc.LastDrops, n.rpcAddr)
			pc.HPLastDrops.V = append(pc.HPLastDrops.V, n.hostPort)
		}
	}
	return pc
}

func errCode(c wire.Code) idl.ErrorCode { return idl.ErrorCode(c.Name()) }

// queryConfig serves RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX (protocol.md §6.1).
func (m *machine) queryConfig(q *idl.QueryCfgRequest) *idl.QueryCfgResponse {
	t := m.state.availableTable(q.AppName)
	if t == nil {
		if m.state.namedTable(q.AppName) != nil {
			return &idl.QueryCfgResponse{Err: errCode(wire.ErrBusyCreating)} // being recalled
		}
		return &idl.QueryCfgResponse{Err: errCode(wire.ErrObjectNotFound)}
	}
	resp := &idl.QueryCfgResponse{Err: errCode(wire.OK), AppID: t.AppID,
		PartitionCount: t.PartitionCount, IsStateful: t.IsStateful}
	for _, i := range q.PartitionIndices {
		if i >= 0 && i < t.PartitionCount {
			resp.Partitions = append(resp.Partitions, m.partitionConfig(t, i))
		}
	}
	if len(resp.Partitions) == 0 {
		resp.Partitions = make([]idl.PartitionConfiguration, t.PartitionCount)
		for i := range t.PartitionCount {
			resp.Partitions[i] = m.partitionConfig(t, i)
		}
	}
	return resp
}

// tableReady reports whether table appID serves as it was created: every partition's
// primary is its placement's first member and every other member is a secondary (alive,
// and a voter as the primary reports). A table that is not available (dropped, or unknown)
// has nothing to wait for: ready.
//
// Only reports received at or after since count for the primaries: a recalled table's
// partitions keep the ballots they had, and the last report of a server that has since
// stopped would still name it their primary.
func (m *machine) tableReady(appID int32, since time.Time) bool {
	t := m.state.tableByID(appID)
	if t == nil || t.Status != idl.AppStatusAvailable {
		return true
	}
	for i := range t.Partitions {
		if !m.partitionReady(t, int32(i), since) {
			return false
		}
	}
	return true
}

// partitionReady reports whether partition pidx of t serves as placed: its primary is the
// placement's first member, as its report at or after since says (zero: any report), and
// every other member is a secondary (alive, and a voter as the primary reports).
func (m *machine) partitionReady(t *table, pidx int32, since time.Time) bool {
	p := &t.Partitions[pidx]
	primary, ok := m.primaryOf(t, pidx)
	if !ok || len(p.Members) == 0 || primary.addr != p.Members[0] || primary.lastSync.Before(since) {
		return false
	}
	return len(m.partitionConfig(t, pidx).Secondaries) == len(p.Members)-1
}

// validEnvs reports whether envs can be stored: keys must not be empty. (Pegasus also checks
// the values of the envs it knows; gopegasus has none with a restricted value yet.)
func validEnvs(envs map[string]string) bool {
	for k := range envs {
		if k == "" {
			return false
		}
	}
	return true
}

// createApp serves RPC_CM_CREATE_APP (protocol.md §6.3). The reply is sent after the new
// table is persisted; replicas come up asynchronously. Like Apache Pegasus's meta it takes
// any partition count in range, powers of two or not: clients route by hash modulo the
// count, and so do the replicas' checks; only a split needs a power of two.
func (m *machine) createApp(ctx context.Context, q *idl.CreateAppRequest) *idl.CreateAppResponse {
	fail := func(c wire.Code) *idl.CreateAppResponse { return &idl.CreateAppResponse{Err: errCode(c)} }
	o := &q.Options
	alive := m.replicaTargets()
	switch {
	case len(alive) == 0:
		return fail(wire.ErrStateFreezed)
	case o.PartitionCount <= 0 || o.PartitionCount > MaxPartitionCount:
		return fail(wire.ErrInvalidParameters)
	case o.ReplicaCount < MinReplicaCount || o.ReplicaCount > MaxReplicaCount || int(o.ReplicaCount) > len(alive):
		return fail(wire.ErrInvalidParameters)
	case !validEnvs(o.Envs):
		return fail(wire.ErrInvalidParameters)
	case q.AppName == "":
		return fail(wire.ErrInvalidParameters)
	}
	if t := m.state.namedTable(q.AppName); t != nil && t.Status == idl.AppStatusRecalling {
		return fail(wire.ErrBusyCreating)
	}
	if t := m.state.availableTable(q.AppName); t != nil && dup.IsFollowerCreate(q) {
		return m.repeatedFollowerCreate(ctx, t, q)
	}
	if t := m.state.availableTable(q.AppName); t != nil {
		if !o.SuccessIfExist {
			return fail(wire.ErrAppExist)
		}
		same := o.PartitionCount == t.PartitionCount && o.AppType == t.AppType &&
			maps.Equal(o.Envs, t.Envs) && o.IsStateful == t.IsStateful && o.ReplicaCount == t.ReplicaCount
		if !same {
			return fail(wire.ErrInvalidParameters)
		}
		return &idl.CreateAppResponse{Err: errCode(wire.OK), AppID: t.AppID}
	}
	if err := m.limits().checkCreate(m.state, q.AppName, o, len(alive)); err != nil {
		m.lg.Info("create_app refused", "table", q.AppName, "err", err)
		return fail(wire.ErrInvalidParameters)
	}
	op := &mutation{CreateTable: m.newTable(q.AppName, o.AppType, o.PartitionCount, o.ReplicaCount,
		o.IsStateful, o.AtomicIdempotent, o.Envs, alive)}
	res, err := m.commit(ctx, op)
	if err != nil {
		return fail(commitErrCode(err))
	}
	if res.Code == wire.OK {
		m.lg.Info("table created", "table", q.AppName, "app_id", res.AppID,
			"partitions", o.PartitionCount, "replicas", o.ReplicaCount)
	}
	return &idl.CreateAppResponse{Err: errCode(res.Code), AppID: res.AppID}
}

// newTable prepares the creation of a table placed on the alive nodes.
func (m *machine) newTable(name, appType string, partitions, replicas int32, stateful, atomic bool,
	envs map[string]string, alive []string) *createTable {
	load, firsts := m.load()
	return &createTable{
		Name:             name,
		AppType:          appType,
		ReplicaCount:     replicas,
		IsStateful:       stateful,
		AtomicIdempotent: atomic,
		Envs:             maps.Clone(envs),
		Now:              m.cfg.Now().Unix(),
		Placement:        place(alive, load, firsts, int(partitions), int(replicas), int(m.state.MaxAppID)+1),
	}
}

// load counts, per node, the replicas and the first members of the available tables.
func (m *machine) load() (load, firsts map[string]int) {
	load, firsts = make(map[string]int), make(map[string]int)
	for _, t := range m.state.Tables {
		if t.Status != idl.AppStatusAvailable {
			continue
		}
		for _, p := range t.Partitions {
			for i, addr := range p.Members {
				load[addr]++
				if i == 0 {
					firsts[addr]++
				}
			}
		}
	}
	return load, firsts
}

// dropApp serves RPC_CM_DROP_APP (protocol.md §6.4).
func (m *machine) dropApp(ctx context.Context, q *idl.DropAppRequest) *idl.DropAppResponse {
	t := m.state.availableTable(q.AppName)
	if t == nil && m.state.namedTable(q.AppName) != nil {
		return &idl.DropAppResponse{Err: errCode(wire.ErrBusyCreating)} // being recalled
	}
	if t == nil {
		if q.Options.SuccessIfNotExist {
			return &idl.DropAppResponse{Err: errCode(wire.OK)}
		}
		return &idl.DropAppResponse{Err: errCode(wire.ErrAppNotExist)}
	}
	if t.Split != nil {
		return &idl.DropAppResponse{Err: errCode(wire.ErrSplitting)}
	}
	now := m.cfg.Now().Unix()
	reserve := int64(m.cfg.DropReserve / time.Second)
	if r, ok := q.Options.ReserveSeconds.Get(); ok && r > 0 {
		reserve = r
	}
	res, err := m.commit(ctx, &mutation{DropTable: &dropTable{Name: q.AppName, Now: now, ExpireSecond: now + reserve}})
	if err != nil {
		return &idl.DropAppResponse{Err: errCode(commitErrCode(err))}
	}
	if res.Code == wire.OK {
		m.lg.Info("table dropped", "table", q.AppName, "app_id", res.AppID, "expire_second", now+reserve)
	}
	return &idl.DropAppResponse{Err: errCode(res.Code)}
}

// listApps serves RPC_CM_LIST_APPS (protocol.md §6.5).
func (m *machine) listApps(q *idl.ListAppsRequest) *idl.ListAppsResponse {
	match := func(string) bool { return true }
	pattern, hasPattern := q.AppNamePattern.Get()
	mt, hasType := q.MatchType.Get()
	if hasPattern && hasType {
		switch mt {
		case idl.PatternMatchAll:
		case idl.PatternMatchExact:
			match = func(n string) bool { return n == pattern }
		case idl.PatternMatchAnywhere:
			match = func(n string) bool { return strings.Contains(n, pattern) }
		case idl.PatternMatchPrefix:
			match = func(n string) bool { return strings.HasPrefix(n, pattern) }
		case idl.PatternMatchPostfix:
			match = func(n string) bool { return strings.HasSuffix(n, pattern) }
		default:
			return &idl.ListAppsResponse{Err: errCode(wire.ErrNotImplemented), Infos: []idl.AppInfo{},
				HintMessage: idl.Some(fmt.Sprintf("match type %s is not supported", mt))}
		}
	}
	resp := &idl.ListAppsResponse{Err: errCode(wire.OK), Infos: []idl.AppInfo{}}
	for _, t := range m.state.Tables {
		if (q.Status == idl.AppStatusInvalid || q.Status == t.Status) && match(t.Name) {
			resp.Infos = append(resp.Infos, t.appInfo())
		}
	}
	return resp
}

// listNodes serves RPC_CM_LIST_NODES: alive nodes first, then dead ones, each by address.
func (m *machine) listNodes(q *idl.ListNodesRequest) *idl.ListNodesResponse {
	nodes := slices.SortedFunc(maps.Values(m.nodes), func(a, b *node) int {
		if a.alive != b.alive {
			if a.alive {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.addr, b.addr)
	})
	resp := &idl.ListNodesResponse{Err: errCode(wire.OK), Infos: []idl.NodeInfo{}}
	for _, n := range nodes {
		status := idl.NodeStatusUnalive
		if n.alive {
			status = idl.NodeStatusAlive
		}
		if q.Status != idl.NodeStatusInvalid && q.Status != status {
			continue
		}
		resp.Infos = append(resp.Infos, idl.NodeInfo{Status: status, Node: n.rpcAddr, HPNode: idl.Some(n.hostPort)})
	}
	return resp
}

// clusterInfo serves RPC_CM_CLUSTER_INFO, keys in the order Pegasus sends them; metas are
// the meta group's members.
func (m *machine) clusterInfo(metas []string) *idl.ClusterInfoResponse {
	alive := m.aliveNodes()
	primaries := make(map[string]float64, len(alive))
	replicas := make(map[string]float64, len(alive))
	for _, t := range m.state.Tables {
		if t.Status != idl.AppStatusAvailable {
			continue
		}
		for i, p := range t.Partitions {
			if n, ok := m.primaryOf(t, int32(i)); ok {
				primaries[n.addr]++
			}
			for _, addr := range p.Members {
				replicas[addr]++
			}
		}
	}
	kv := [][2]string{
		{"meta_servers", strings.Join(metas, ",")},
		{"primary_meta_server", m.cfg.Advertise},
		{"zookeeper_hosts", ""},
		{"zookeeper_root", ""},
		{"meta_function_level", levelName(m.level())},
		{"balance_operation_count", m.balanceOpCounts().text()},
		{"primary_replica_count_stddev", fmt.Sprintf("%.2f", stddev(alive, primaries))},
		{"total_replica_count_stddev", fmt.Sprintf("%.2f", stddev(alive, replicas))},
		{"cluster_name", m.cfg.ClusterName},
	}
	resp := &idl.ClusterInfoResponse{Err: errCode(wire.OK)}
	for _, e := range kv {
		resp.Keys = append(resp.Keys, e[0])
		resp.Values = append(resp.Values, e[1])
	}
	return resp
}

// stddev is the population standard deviation of count over nodes (0 without nodes).
func stddev(nodes []string, count map[string]float64) float64 {
	if len(nodes) == 0 {
		return 0
	}
	var sum float64
	for _, n := range nodes {
		sum += count[n]
	}
	mean := sum / float64(len(nodes))
	var sq float64
	for _, n := range nodes {
		d := count[n] - mean
		sq += d * d
	}
	return math.Sqrt(sq / float64(len(nodes)))
}

// updateAppEnv serves RPC_CM_UPDATE_APP_ENV. The request is checked before the table is
// looked up; an unknown table gets ERR_APP_NOT_EXIST, as Pegasus's env handlers answer.
func (m *machine) updateAppEnv(ctx context.Context, q *idl.UpdateAppEnvRequest) *idl.UpdateAppEnvResponse {
	fail := func(c wire.Code, hint string) *idl.UpdateAppEnvResponse {
		return &idl.UpdateAppEnvResponse{Err: errCode(c), HintMessage: hint}
	}
	keys, hasKeys := q.Keys.Get()
	values, hasValues := q.Values.Get()
	op := &updateEnvs{}
	switch q.Op {
	case idl.AppEnvOpSet:
		if !hasKeys || !hasValues || len(keys) == 0 || len(keys) != len(values) {
			return fail(wire.ErrInvalidParameters, "SET needs keys and values of the same, non-zero length")
		}
		op.Set = make(map[string]string, len(keys))
		for i, k := range keys {
			if k == "" {
				return fail(wire.ErrInvalidParameters, "an env key must not be empty")
			}
			op.Set[k] = values[i]
		}
	case idl.AppEnvOpDel:
		if !hasKeys || len(keys) == 0 {
			return fail(wire.ErrInvalidParameters, "DEL needs keys")
		}
	case idl.AppEnvOpClear:
		if !q.ClearPrefix.Set {
			return fail(wire.ErrInvalidParameters, "CLEAR needs clear_prefix")
		}
	default:
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("unknown operation %s", q.Op))
	}
	t := m.state.availableTable(q.AppName)
	if t == nil {
		return fail(wire.ErrAppNotExist, fmt.Sprintf("table %s does not exist", q.AppName))
	}
	op.AppID = t.AppID
	if op.Set != nil {
		after := maps.Clone(t.Envs)
		if after == nil {
			after = map[string]string{}
		}
		maps.Copy(after, op.Set)
		if err := m.limits().checkEnvs(after, op.Set); err != nil {
			return fail(wire.ErrInvalidParameters, "invalid envs: "+err.Error())
		}
	}
	var hint string
	switch q.Op {
	case idl.AppEnvOpDel:
		for _, k := range keys {
			if _, ok := t.Envs[k]; ok && !slices.Contains(op.Delete, k) {
				op.Delete = append(op.Delete, k)
			}
		}
		hint = "deleted keys: " + strings.Join(op.Delete, ",")
	case idl.AppEnvOpClear:
		prefix := q.ClearPrefix.V
		for _, k := range slices.Sorted(maps.Keys(t.Envs)) {
			if prefix == "" || (len(k) > len(prefix)+1 && strings.HasPrefix(k, prefix+".")) {
				op.Delete = append(op.Delete, k)
			}
		}
		hint = "cleared keys: " + strings.Join(op.Delete, ",")
	}
	if len(op.Set) == 0 && len(op.Delete) == 0 {
		return &idl.UpdateAppEnvResponse{Err: errCode(wire.OK), HintMessage: hint}
	}
	res, err := m.commit(ctx, &mutation{UpdateEnvs: op})
	if err != nil {
		return fail(commitErrCode(err), "cannot persist the change")
	}
	if res.Code == wire.OK {
		m.lg.Info("table envs updated", "table", t.Name, "op", q.Op.String())
	}
	return &idl.UpdateAppEnvResponse{Err: errCode(res.Code), HintMessage: hint}
}

// sync records a replica server's report and answers with what it should host.
func (m *machine) sync(ctx context.Context, req *cluster.SyncRequest) (*cluster.SyncResponse, wire.Code) {
	n := m.nodes[req.Node]
	if n == nil {
		var err error
		if n, err = newNode(req.Node); err != nil {
			m.lg.Warn("config sync from a node that is not ip:port", "node", req.Node, "err", err)
			return nil, wire.ErrInvalidParameters
		}
		m.nodes[req.Node] = n
	}
	if !n.alive {
		m.lg.Info("replica server alive", "node", n.addr)
	} else if n.startTime != req.StartTime {
		m.lg.Info("replica server restarted", "node", n.addr)
	}
	n.alive, n.lastSync, n.startTime = true, m.cfg.Now(), req.StartTime
	if !slices.Contains(m.state.Nodes, n.addr) {
		// Remembered, so a later leader knows the server before it syncs; retried on the
		// next sync if this fails.
		_, _ = m.commit(ctx, &mutation{AddNodes: []string{n.addr}})
	}
	n.replicas = make(map[idl.GPID]cluster.ReplicaState, len(req.Replicas))
	var raises []ballotRaise
	for _, rs := range req.Replicas {
		gpid := idl.GPID{AppID: rs.AppID, PartitionIndex: rs.PartitionIndex}
		n.replicas[gpid] = rs
		if !rs.IsLeader {
			continue
		}
		t := m.state.tableByID(rs.AppID)
		if t == nil || !t.serving() || rs.PartitionIndex < 0 || rs.PartitionIndex >= t.PartitionCount {
			continue
		}
		p := &t.Partitions[rs.PartitionIndex]
		if b := ballotOf(rs.Term); b > p.Ballot && slices.Contains(p.Members, n.addr) {
			raises = append(raises, ballotRaise{GPID: gpid, Ballot: b})
		}
	}
	if len(raises) > 0 {
		// On a failed save the ballot stays in the past and the claim is ignored until the next
		// sync retries: a primary is only reported with a ballot that is durable.
		if _, err := m.commit(ctx, &mutation{RaiseBallots: raises}); err == nil {
			for _, r := range raises {
				m.lg.Info("new primary", "gpid", r.GPID.String(), "node", n.addr, "ballot", r.Ballot)
			}
		}
	}
	m.maybeCreateInitialTables(ctx)
	m.noteOpsReports(ctx, req)
	m.finishRecalls(ctx)
	m.driveSplits(ctx)
	m.notify()

	resp := &cluster.SyncResponse{Err: wire.OK.Name(), Assignments: []cluster.Assignment{}, MaxAppID: m.state.MaxAppID}
	for _, t := range m.state.Tables {
		resp.Apps = append(resp.Apps, t.AppID)
		switch t.Status {
		case idl.AppStatusAvailable, idl.AppStatusRecalling:
			for i, p := range t.Partitions {
				if !slices.Contains(p.Members, n.addr) {
					continue
				}
				a := cluster.Assignment{
					AppID: t.AppID, PartitionIndex: int32(i), AppName: t.Name,
					Members: slices.Clone(p.Members), Join: slices.Contains(p.Joined, n.addr),
					Dups: dupAssignments(t, i),
				}
				splitAssignment(t, int32(i), &a)
				resp.Assignments = append(resp.Assignments, a)
				if _, ok := resp.Envs[t.AppID]; !ok && len(t.Envs) > 0 {
					if resp.Envs == nil {
						resp.Envs = make(map[int32]map[string]string)
					}
					resp.Envs[t.AppID] = maps.Clone(t.Envs)
				}
			}
		case idl.AppStatusDropped:
			resp.DroppedApps = append(resp.DroppedApps, t.AppID)
		}
	}
	resp.Backups = m.backupTasks(n.addr)
	resp.BulkLoads = m.bulkLoadTasks(n.addr)
	resp.AssignmentsHash = cluster.PlacementHash(m.syncSeed, resp)
	if req.KnownAssignments == resp.AssignmentsHash {
		resp.OmitPlacement() // the server has it (see cluster.PlacementHash)
	}
	return resp, wire.OK
}

// maybeCreateInitialTables creates the configured initial tables once enough replica
// servers are alive.
func (m *machine) maybeCreateInitialTables(ctx context.Context) {
	if !m.initialPending {
		return
	}
	need := 0
	for _, spec := range m.cfg.InitialTables {
		need = max(need, int(spec.Replicas))
	}
	alive := m.replicaTargets()
	if len(alive) < need {
		return
	}
	specs := slices.SortedFunc(slices.Values(m.cfg.InitialTables), func(a, b TableSpec) int { return cmp.Compare(a.Name, b.Name) })
	op := &mutation{InitialTables: true}
	// Place each table after the previous one, so their load adds up.
	saved := m.state
	m.state = m.state.clone()
	for _, spec := range specs {
		if m.state.availableTable(spec.Name) != nil {
			continue // created by a user meanwhile
		}
		c := m.newTable(spec.Name, "pegasus", spec.Partitions, spec.Replicas, true, false, nil, alive)
		op.CreateTables = append(op.CreateTables, c)
		m.state.create(c)
	}
	m.state = saved
	if _, err := m.commit(ctx, op); err != nil {
		return // retried on the next sync
	}
	m.initialPending = false
	for _, c := range op.CreateTables {
		m.lg.Info("initial table created", "table", c.Name, "partitions", len(c.Placement), "replicas", c.ReplicaCount)
	}
}
