package meta

import (
	"errors"
	"time"

	"github.com/gopegasus/pegasus/internal/acl"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/raftlog"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/sasl"
)

// Defaults of the meta server's settings: each is the default of exactly one setting of
// [NewSettings], which is where [Config.EnsureDefaults] takes it from.
const (
	// DefaultNodeGrace is how long a replica server may stay silent before it is dead.
	DefaultNodeGrace = 10 * time.Second
	// DefaultClusterName is the cluster's name reported by cluster_info.
	DefaultClusterName = "gopegasus"
	// DefaultRaftTick is the tick of the metas' raft group: the leader heartbeats every tick,
	// and a follower that hears nothing for 10 to 20 ticks starts an election.
	DefaultRaftTick = 100 * time.Millisecond
	// DefaultSnapshotEntries is how many mutations are applied between two snapshots of the
	// cluster map (each snapshot truncates the raft log).
	DefaultSnapshotEntries = 1000
	// DefaultDropReserve is how long a dropped table is kept (listed, and recallable) before
	// it is purged and its data deleted, when the drop request does not say (Pegasus's
	// hold_seconds_for_dropped_app).
	DefaultDropReserve = 7 * 24 * time.Hour
	// DefaultRaftLogDurability is the durability of the metas' raft log: a mutation is
	// acknowledged once fsynced on a quorum.
	DefaultRaftLogDurability = "always"
	// DefaultCreateWait bounds how long a create_app reply waits for its table to be ready.
	DefaultCreateWait = 10 * time.Second
	// DefaultDupProgressInterval is how often, at most, the duplications' confirmed decrees
	// the primaries report are saved in the cluster map.
	DefaultDupProgressInterval = 5 * time.Second
	// DefaultLevelOnStart is the meta function level of a cluster whose level was never set.
	DefaultLevelOnStart = "steady"
	// DefaultBalanceMovesPerNode bounds the moves under way at once on one replica server.
	DefaultBalanceMovesPerNode = 2
)

// Settings are the meta server's settings, each registered once in its registry (which backs
// /config, /configs and /updateConfig). Make them with [NewSettings], load a file into
// Registry() if there is one, and pass them in [Config].Settings; Config fields that are set
// override them.
type Settings struct {
	reg *config.Registry
	// Network are the connection bounds of the RPC port (section network).
	Network *rpc.LimitSettings
	// limits are the bounds of tables and their envs (limits.go).
	limits *tableLimits

	Listen, Advertise, DataDir, Metas, ClusterName *config.Value[string]
	NodeGraceMS, RaftTickMS, SnapshotEntries       *config.Value[uint32]
	HoldDroppedS                                   *config.Value[uint32]
	// RaftLogDurability and RaftLogSyncIntervalMS: see Config.RaftLogDurability.
	RaftLogDurability     *config.Value[string]
	RaftLogSyncIntervalMS *config.Value[uint32]
	// CreateWaitMS: see Config.CreateWait.
	CreateWaitMS *config.Value[uint32]
	// The long operations' switches and bounds: see Config.ColdBackupDisabled,
	// MinBackupInterval and ConcurrentBulkLoad.
	ColdBackupDisabled *config.Value[bool]
	MinBackupIntervalS *config.Value[uint32]
	ConcurrentBulkLoad *config.Value[bool]

	// Duplication (package dup): whether it is on, the remote clusters ([pegasus.clusters])
	// and the duplication cluster ids ([duplication-group]).
	DupEnabled, DupIgnoreOtherClusterIDs *config.Value[bool]
	DupProgressMS                        *config.Value[uint32]
	Clusters, DupGroup                   *config.Section

	// LevelOnStart and BalanceMovesPerNode: see Config.LevelOnStart and BalanceMovesPerNode.
	LevelOnStart        *config.Value[string]
	BalanceMovesPerNode *config.Value[uint32]
	// LivePercentage and AssignDelayMS: see Config.LivePercentage and AssignDelay.
	LivePercentage, AssignDelayMS *config.Value[uint32]

	// Auth and ACL are the client authentication and access control settings, section
	// [security] (packages sasl and acl).
	Auth *sasl.Settings
	ACL  *acl.Settings
}

// NewSettings registers every setting of a meta server, with its default, in a new registry.
func NewSettings() *Settings {
	r := config.NewRegistry()
	str := func(section, name, desc string) *config.Value[string] {
		return config.Define(r, config.Spec[string]{Section: section, Name: name, Description: desc})
	}
	positive := func(v uint32) error {
		if v == 0 {
			return errors.New("must be positive")
		}
		return nil
	}
	u32 := func(section, name, desc string, def uint32) *config.Value[uint32] {
		return config.Define(r, config.Spec[uint32]{Section: section, Name: name, Description: desc, Default: def, Validate: positive})
	}
	blockservice.DefineConfig(r)
	return &Settings{
		reg:     r,
		Auth:    sasl.NewSettings(r),
		ACL:     acl.NewSettings(r),
		Network: rpc.DefineLimits(r),
		limits:  defineTableLimits(r),
		ColdBackupDisabled: config.Define(r, config.Spec[bool]{Section: "meta_server", Name: "cold_backup_disabled",
			Description: "Turns cold backup and restore off."}),
		MinBackupIntervalS: u32("meta_server", "cold_backup_min_interval_seconds",
			"The shortest interval of a backup policy, in seconds.", 86400),
		ConcurrentBulkLoad: config.Define(r, config.Spec[bool]{Section: "meta_server", Name: "allow_concurrent_bulk_load",
			Description: "Lets several tables bulk load at once."}),
		Listen:      str("meta_server", "listen", "The TCP address the server listens on, for RPCs and HTTP."),
		Advertise:   str("meta_server", "advertise", "The ip:port others reach this server at; empty means the listening address."),
		DataDir:     str("meta_server", "data_dir", "The directory of the meta's raft log and cluster map snapshots (required)."),
		Metas:       str("meta_server", "server_list", "The meta servers of a new group, comma separated, this one included."),
		ClusterName: config.Define(r, config.Spec[string]{Section: "replication", Name: "cluster_name", Description: "The cluster's name.", Default: DefaultClusterName}),
		NodeGraceMS: u32("meta_server", "node_grace_ms", "How long a replica server may stay silent before it is declared dead, in milliseconds.", uint32(DefaultNodeGrace/time.Millisecond)),
		RaftTickMS:  u32("meta_server", "raft_tick_ms", "The tick of the metas' raft group, in milliseconds.", uint32(DefaultRaftTick/time.Millisecond)),
		SnapshotEntries: u32("meta_server", "snapshot_entries",
			"How many mutations are applied between two snapshots of the cluster map.", DefaultSnapshotEntries),
		HoldDroppedS: u32("meta_server", "hold_seconds_for_dropped_app",
			"How long a dropped table's data is kept (and the table can be recalled) when the drop does not say, in seconds.",
			uint32(DefaultDropReserve/time.Second)),
		RaftLogDurability: config.Define(r, config.Spec[string]{Section: "replication", Name: "raft_log_durability",
			Description: "When a mutation of the cluster map is acknowledged: always (once fsynced in the raft log of a quorum of metas) or os (once written to their operating system; the raft log is fsynced every raft_log_sync_interval_ms, and a power loss of a quorum within it can lose acknowledged mutations).",
			Default:     DefaultRaftLogDurability, Validate: func(v string) error {
				_, err := raftlog.ParseDurability(v)
				return err
			}}),
		RaftLogSyncIntervalMS: u32("replication", "raft_log_sync_interval_ms",
			"With raft_log_durability = os, how often the raft log is fsynced, in milliseconds.", uint32(raftlog.DefaultSyncInterval/time.Millisecond)),
		CreateWaitMS: config.Define(r, config.Spec[uint32]{Section: "meta_server", Name: "create_app_wait_ms",
			Description: "How long, in milliseconds, a create_app reply waits for the new table to be ready (every partition led by its intended primary, with all its secondaries), and at most half the client's timeout; 0 answers once the table is registered.",
			Default:     uint32(DefaultCreateWait / time.Millisecond)}),
		DupEnabled: config.Define(r, config.Spec[bool]{Section: "replication", Name: "duplication_enabled",
			Description: "Whether tables can be duplicated to other clusters.", Default: true}),
		DupIgnoreOtherClusterIDs: config.Define(r, config.Spec[bool]{Section: "replication", Name: "dup_ignore_other_cluster_ids",
			Description: "Whether a duplication may be added to a remote cluster without a [duplication-group] id."}),
		DupProgressMS: u32("meta_server", "duplication_progress_persist_ms",
			"How often, at most, in milliseconds, the duplications' confirmed decrees are saved in the cluster map.",
			uint32(DefaultDupProgressInterval/time.Millisecond)),
		LevelOnStart: config.Define(r, config.Spec[string]{Section: "meta_server", Name: "meta_function_level_on_start",
			Description: "The meta function level of a cluster whose level was never set (set_meta_level): stopped, blind, freezed, steady (nothing is balanced) or lively (the balancer runs).",
			Default:     DefaultLevelOnStart, Validate: func(v string) error {
				if _, ok := idl.ParseMetaFunctionLevel(v); !ok {
					return errors.New("not a meta function level (stopped, blind, freezed, steady, lively)")
				}
				return nil
			}}),
		BalanceMovesPerNode: u32("meta_server", "balance_moves_per_node",
			"How many replica or primary moves may be under way at once on one replica server.", DefaultBalanceMovesPerNode),
		LivePercentage: config.Define(r, config.Spec[uint32]{Section: "meta_server", Name: "node_live_percentage_threshold_for_update",
			Description: "The lost replicas of dead replica servers are replaced only while at least this percentage (0 to 100) of the known replica servers is alive; 0 never holds them.",
			Validate: func(v uint32) error {
				if v > 100 {
					return errors.New("must be at most 100")
				}
				return nil
			}}),
		AssignDelayMS: config.Define(r, config.Spec[uint32]{Section: "meta_server", Name: "replica_assign_delay_ms_for_dropouts",
			Description: "How long, in milliseconds, the replicas of a dead replica server wait, once it is declared dead, before they are replaced on other servers; 0 replaces them at once."}),
		Clusters: config.DefineSection(r, dup.ClustersSection, "The remote clusters: name = meta servers, comma separated."),
		DupGroup: config.DefineSection(r, dup.GroupSection, "The duplication cluster ids: cluster name = id (1 to 127), this cluster's own included."),
	}
}

// Registry returns the registry the settings live in.
func (st *Settings) Registry() *config.Registry { return st.reg }
