package meta

import (
	"maps"
	"slices"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// stateFormat is the version of the persisted cluster map's layout.
const stateFormat = 1

// clusterMap is the durable state of the cluster: every table the meta holds (dropped ones
// until they expire), the placement of their partitions, the highest ballot each partition
// ever had and the replica servers ever seen. It changes only through [clusterMap.apply],
// which is deterministic (time and placement come in the mutation), so the same sequence of
// mutations gives the same map on every meta: the metas' raft group replicates it as a log
// of mutations.
//
// What is not here is volatile and rebuilt from the replica servers' reports: node liveness,
// and which replica currently leads each partition.
type clusterMap struct {
	Format int `json:"format"`
	// MaxAppID is the highest app id ever allocated; ids are never reused, even after a
	// dropped table was purged, so a replica server never mistakes old data for a new table.
	MaxAppID int32 `json:"max_app_id"`
	// InitialTablesDone is set once the configured initial tables were created (or found
	// unnecessary because the map already held tables): they are never created again.
	InitialTablesDone bool     `json:"initial_tables_done"`
	Tables            []*table `json:"tables"` // ordered by AppID
	// Nodes are the replica servers ("ip:port") that ever synced, in order of arrival, so a
	// new meta leader knows them before they report to it.
	Nodes []string `json:"nodes,omitempty"`
	// Ops is the state of the long operations: backups, restores, bulk loads (ops_state.go).
	Ops *opsState `json:"ops,omitempty"`
	// MetaLevel is the meta function level set by RPC_CM_CONTROL_META; 0 until one is set,
	// when the configured level on start applies (balancer.go).
	MetaLevel idl.MetaFunctionLevel `json:"meta_level,omitempty"`
	// Leaving are the replica servers being decommissioned, in the order they were marked:
	// the balancer moves every replica off them and places nothing new there (balancer.go).
	Leaving []string `json:"leaving,omitempty"`
}

// table is one table (an "app" in Pegasus terms).
type table struct {
	AppID            int32             `json:"app_id"`
	Name             string            `json:"name"`
	AppType          string            `json:"app_type"`
	Status           idl.AppStatus     `json:"status"`
	PartitionCount   int32             `json:"partition_count"`
	ReplicaCount     int32             `json:"replica_count"`
	IsStateful       bool              `json:"is_stateful"`
	AtomicIdempotent bool              `json:"atomic_idempotent,omitempty"`
	Envs             map[string]string `json:"envs,omitempty"`
	CreateSecond     int64             `json:"create_second"`
	DropSecond       int64             `json:"drop_second,omitempty"`
	ExpireSecond     int64             `json:"expire_second,omitempty"`
	Partitions       []partition       `json:"partitions"`
	// Dups are the table's duplications to other clusters, by dupid (dup.go).
	Dups []*duplication `json:"duplications,omitempty"`
	// InitPartitionCount is the partition count the table was created with, once a split
	// doubled PartitionCount (0 before: the same); Split is the split in progress (split.go).
	InitPartitionCount int32       `json:"init_partition_count,omitempty"`
	Split              *tableSplit `json:"split,omitempty"`
}

// partition is the durable part of one partition's configuration.
type partition struct {
	// Members are the replica servers ("ip:port") hosting the partition, in placement order:
	// the first is the preferred primary.
	Members []string `json:"members"`
	// Ballot is the highest ballot (leader raft term) ever reported; 0 before the first
	// leader, -1 for a split child not registered yet. It never decreases.
	Ballot int64 `json:"ballot"`
	// Joined are the members that replaced a lost one: their replicas join the existing
	// raft group instead of bootstrapping a new one.
	Joined []string `json:"joined,omitempty"`
}

// mutation is one change of the cluster map. Exactly one field is set.
type mutation struct {
	CreateTable  *createTable  `json:"create_table,omitempty"`
	DropTable    *dropTable    `json:"drop_table,omitempty"`
	UpdateEnvs   *updateEnvs   `json:"update_envs,omitempty"`
	RaiseBallots []ballotRaise `json:"raise_ballots,omitempty"`
	PurgeBefore  *int64        `json:"purge_before,omitempty"`
	// InitialTables marks the initial tables as created (alone, or with the CreateTables).
	InitialTables bool           `json:"initial_tables,omitempty"`
	CreateTables  []*createTable `json:"create_tables,omitempty"`
	// AddNodes records replica servers seen for the first time.
	AddNodes []string `json:"add_nodes,omitempty"`
	// ReplaceMembers swaps lost members of partitions for live servers.
	ReplaceMembers []memberReplace `json:"replace_members,omitempty"`
	// Ops changes the long operations' state (ops_state.go).
	Ops *opsMutation `json:"ops,omitempty"`
	// RecallTable brings a dropped table back (AS_RECALLING); FinishRecall makes a
	// recalling table available once its partitions serve again (recall.go).
	RecallTable  *recallTable `json:"recall_table,omitempty"`
	FinishRecall *int32       `json:"finish_recall,omitempty"`
	// AddDup, ModifyDup and DupProgress change duplications (dup.go).
	AddDup      *addDup       `json:"add_dup,omitempty"`
	ModifyDup   *modifyDup    `json:"modify_dup,omitempty"`
	DupProgress []dupProgress `json:"dup_progress,omitempty"`
	// SplitStart and SplitUpdate start and move a partition split (split.go).
	SplitStart  *splitStart  `json:"split_start,omitempty"`
	SplitUpdate *splitUpdate `json:"split_update,omitempty"`
	// SetLevel sets the meta function level; SetLeaving marks replica servers as leaving
	// (or no longer); Balance carries out the balancer's moves (balancer.go).
	SetLevel   *idl.MetaFunctionLevel `json:"set_level,omitempty"`
	SetLeaving *leavingChange         `json:"set_leaving,omitempty"`
	Balance    *balanceMoves          `json:"balance,omitempty"`
}

// memberReplace moves one partition's replica from a lost server to another.
type memberReplace struct {
	GPID idl.GPID `json:"gpid"`
	Old  string   `json:"old"`
	New  string   `json:"new"`
}

type createTable struct {
	Name             string            `json:"name"`
	AppType          string            `json:"app_type"`
	ReplicaCount     int32             `json:"replica_count"`
	IsStateful       bool              `json:"is_stateful"`
	AtomicIdempotent bool              `json:"atomic_idempotent,omitempty"`
	Envs             map[string]string `json:"envs,omitempty"`
	Now              int64             `json:"now"`
	// Placement holds the members of each partition; its length is the partition count.
	Placement [][]string `json:"placement"`
}

type dropTable struct {
	Name         string `json:"name"`
	Now          int64  `json:"now"`
	ExpireSecond int64  `json:"expire_second"`
}

type updateEnvs struct {
	AppID  int32             `json:"app_id"`
	Set    map[string]string `json:"set,omitempty"`
	Delete []string          `json:"delete,omitempty"`
}

type ballotRaise struct {
	GPID   idl.GPID `json:"gpid"`
	Ballot int64    `json:"ballot"`
}

// result is what applying a mutation produced.
type result struct {
	Code  wire.Code
	AppID int32
}

// newClusterMap returns an empty cluster map.
func newClusterMap() *clusterMap { return &clusterMap{Format: stateFormat} }

// namedTable returns the table that holds name: the available one, or one being recalled
// under it. A dropped table's name is free at once.
func (m *clusterMap) namedTable(name string) *table {
	for _, t := range m.Tables {
		if (t.Status == idl.AppStatusAvailable || t.Status == idl.AppStatusRecalling) && t.Name == name {
			return t
		}
	}
	return nil
}

// availableTable returns the available table called name: the name index holds only those,
// so a dropped table's name is free at once.
func (m *clusterMap) availableTable(name string) *table {
	for _, t := range m.Tables {
		if t.Status == idl.AppStatusAvailable && t.Name == name {
			return t
		}
	}
	return nil
}

// tableByID returns the table with app id id, or nil.
func (m *clusterMap) tableByID(id int32) *table {
	i, ok := slices.BinarySearchFunc(m.Tables, id, func(t *table, id int32) int { return int(t.AppID - id) })
	if !ok {
		return nil
	}
	return m.Tables[i]
}

// apply changes m by op. It checks only what depends on the map itself (a name that is taken
// or unknown); the caller validates the request beforehand.
func (m *clusterMap) apply(op *mutation) result {
	switch {
	case op.CreateTable != nil:
		return m.create(op.CreateTable)
	case op.DropTable != nil:
		t := m.availableTable(op.DropTable.Name)
		if t == nil {
			return result{Code: wire.ErrAppNotExist}
		}
		t.Status = idl.AppStatusDropped
		t.DropSecond = op.DropTable.Now
		t.ExpireSecond = op.DropTable.ExpireSecond
		return result{Code: wire.OK, AppID: t.AppID}
	case op.UpdateEnvs != nil:
		t := m.tableByID(op.UpdateEnvs.AppID)
		if t == nil || t.Status != idl.AppStatusAvailable {
			return result{Code: wire.ErrAppNotExist}
		}
		for _, k := range op.UpdateEnvs.Delete {
			delete(t.Envs, k)
		}
		if len(op.UpdateEnvs.Set) > 0 && t.Envs == nil {
			t.Envs = make(map[string]string, len(op.UpdateEnvs.Set))
		}
		maps.Copy(t.Envs, op.UpdateEnvs.Set)
		if len(t.Envs) == 0 {
			t.Envs = nil
		}
		return result{Code: wire.OK, AppID: t.AppID}
	case len(op.RaiseBallots) > 0:
		for _, r := range op.RaiseBallots {
			t := m.tableByID(r.GPID.AppID)
			if t == nil || r.GPID.PartitionIndex < 0 || int(r.GPID.PartitionIndex) >= len(t.Partitions) {
				continue
			}
			p := &t.Partitions[r.GPID.PartitionIndex]
			p.Ballot = max(p.Ballot, r.Ballot)
		}
		return result{Code: wire.OK}
	case op.PurgeBefore != nil:
		m.Tables = slices.DeleteFunc(m.Tables, func(t *table) bool {
			return t.Status == idl.AppStatusDropped && t.ExpireSecond <= *op.PurgeBefore
		})
		return result{Code: wire.OK}
	case len(op.ReplaceMembers) > 0:
		for _, r := range op.ReplaceMembers {
			m.replaceMember(r)
		}
		return result{Code: wire.OK}
	case len(op.AddNodes) > 0:
		for _, n := range op.AddNodes {
			if !slices.Contains(m.Nodes, n) {
				m.Nodes = append(m.Nodes, n)
			}
		}
		return result{Code: wire.OK}
	case op.Ops != nil:
		return m.applyOps(op.Ops)
	case op.RecallTable != nil:
		return m.recall(op.RecallTable)
	case op.FinishRecall != nil:
		t := m.tableByID(*op.FinishRecall)
		if t == nil || t.Status != idl.AppStatusRecalling {
			return result{Code: wire.ErrInvalidState}
		}
		t.Status = idl.AppStatusAvailable
		return result{Code: wire.OK, AppID: t.AppID}
	case op.AddDup != nil:
		return m.addDup(op.AddDup)
	case op.ModifyDup != nil:
		return m.modifyDup(op.ModifyDup)
	case len(op.DupProgress) > 0:
		return m.dupProgress(op.DupProgress)
	case op.SplitStart != nil:
		return m.applySplitStart(op.SplitStart)
	case op.SplitUpdate != nil:
		return m.applySplitUpdate(op.SplitUpdate)
	case op.SetLevel != nil:
		m.MetaLevel = *op.SetLevel
		return result{Code: wire.OK}
	case op.SetLeaving != nil:
		return m.applyLeaving(op.SetLeaving)
	case op.Balance != nil:
		return m.applyBalance(op.Balance)
	case op.InitialTables:
		m.InitialTablesDone = true
		for _, c := range op.CreateTables {
			m.create(c)
		}
		return result{Code: wire.OK}
	}
	return result{Code: wire.ErrInvalidParameters}
}

// replaceMember swaps r.Old for r.New among the members of r's partition, if r.Old is one
// and r.New is not, and reports whether it did.
func (m *clusterMap) replaceMember(r memberReplace) bool {
	t := m.tableByID(r.GPID.AppID)
	if t == nil || t.Status != idl.AppStatusAvailable || r.GPID.PartitionIndex < 0 || int(r.GPID.PartitionIndex) >= len(t.Partitions) {
		return false
	}
	p := &t.Partitions[r.GPID.PartitionIndex]
	if !slices.Contains(p.Members, r.Old) || slices.Contains(p.Members, r.New) {
		return false
	}
	// The newcomer goes last: it is nobody's preferred primary until the placement is
	// rebalanced.
	p.Members = append(slices.DeleteFunc(p.Members, func(a string) bool { return a == r.Old }), r.New)
	p.Joined = append(slices.DeleteFunc(p.Joined, func(a string) bool { return a == r.Old }), r.New)
	return true
}

func (m *clusterMap) create(c *createTable) result {
	if t := m.namedTable(c.Name); t != nil {
		return result{Code: wire.ErrAppExist, AppID: t.AppID}
	}
	m.MaxAppID++
	t := &table{
		AppID:            m.MaxAppID,
		Name:             c.Name,
		AppType:          c.AppType,
		Status:           idl.AppStatusAvailable,
		PartitionCount:   int32(len(c.Placement)),
		ReplicaCount:     c.ReplicaCount,
		IsStateful:       c.IsStateful,
		AtomicIdempotent: c.AtomicIdempotent,
		Envs:             maps.Clone(c.Envs),
		CreateSecond:     c.Now,
		Partitions:       make([]partition, len(c.Placement)),
	}
	if len(t.Envs) == 0 {
		t.Envs = nil
	}
	for i, members := range c.Placement {
		t.Partitions[i].Members = slices.Clone(members)
	}
	m.Tables = append(m.Tables, t) // ids only grow, so the slice stays ordered
	return result{Code: wire.OK, AppID: t.AppID}
}

// clone returns a deep copy of m, so a mutation can be applied to the copy and the copy
// persisted before it replaces the map in use.
func (m *clusterMap) clone() *clusterMap {
	c := *m
	c.Nodes = slices.Clone(m.Nodes)
	c.Leaving = slices.Clone(m.Leaving)
	c.Ops = m.Ops.clone()
	c.Tables = make([]*table, len(m.Tables))
	for i, t := range m.Tables {
		tc := *t
		tc.Envs = maps.Clone(t.Envs)
		tc.Split = t.Split.clone()
		tc.Partitions = make([]partition, len(t.Partitions))
		for j, p := range t.Partitions {
			tc.Partitions[j] = partition{Members: slices.Clone(p.Members), Ballot: p.Ballot, Joined: slices.Clone(p.Joined)}
		}
		tc.Dups = cloneDups(t.Dups)
		c.Tables[i] = &tc
	}
	return &c
}

// serving reports whether the table's partitions are to be served: it is available, or
// being recalled.
func (t *table) serving() bool {
	return t.Status == idl.AppStatusAvailable || t.Status == idl.AppStatusRecalling
}

// appInfo returns the table as list_apps reports it.
func (t *table) appInfo() idl.AppInfo {
	info := idl.NewAppInfo()
	info.Status = t.Status
	info.AppType = t.AppType
	info.AppName = t.Name
	info.AppID = t.AppID
	info.PartitionCount = t.PartitionCount
	info.Envs = maps.Clone(t.Envs)
	if info.Envs == nil {
		info.Envs = map[string]string{}
	}
	info.IsStateful = t.IsStateful
	info.MaxReplicaCount = t.ReplicaCount
	info.ExpireSecond = t.ExpireSecond
	info.CreateSecond = t.CreateSecond
	info.DropSecond = t.DropSecond
	info.InitPartitionCount = t.initCount()
	info.AtomicIdempotent = t.AtomicIdempotent
	info.Duplicating = len(t.Dups) > 0
	return info
}
