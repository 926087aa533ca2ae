package replica

import (
	"errors"
	"time"

	"github.com/gopegasus/pegasus/internal/acl"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/raftlog"
	"github.com/gopegasus/pegasus/internal/raftnet"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/sasl"
)

// Defaults of the replica server's settings: each is the default of exactly one setting of
// [NewSettings], which is where [Config.EnsureDefaults] takes it from (the group commit's
// come from raftlog.DefaultOptions).
const (
	DefaultSyncInterval    = time.Second
	DefaultTickInterval    = 100 * time.Millisecond
	DefaultLogCompactEvery = 2000
	DefaultLogKeep         = 1000
	// DefaultLogKeepBytes is the default of raft_log_keep_bytes.
	DefaultLogKeepBytes   = 8 << 20
	DefaultGarbageGrace   = 24 * time.Hour
	DefaultBlockCacheSize = 256 << 20
	// DefaultRaftLogDurability is the raft log's durability: a write is acknowledged once
	// fsynced on a quorum.
	DefaultRaftLogDurability = "always"
	// DefaultLeaderChangeHold is the default of leader_change_hold_ms: an election timeout
	// (10 ticks of the default raft tick), the longest a leadership change under way takes
	// when no server fails.
	DefaultLeaderChangeHold = time.Second
	// DefaultMaxPendingWriteBytes and DefaultWriteQueueTimeout are the defaults of the write
	// admission settings (admission.go).
	DefaultMaxPendingWriteBytes = 128 << 20
	DefaultWriteQueueTimeout    = time.Second
	// DefaultDupSyncInterval is the period of the duplication progress reports to the meta
	// leader (Pegasus's duplication_sync_period_second).
	DefaultDupSyncInterval = 10 * time.Second
	// DefaultDupMaxRetained bounds the raft log entries a partition keeps for duplications
	// that have not confirmed them.
	DefaultDupMaxRetained = 100000
	// DefaultQuiesce is whether idle raft groups quiesce (see README.md, "Idle partitions:
	// quiescence").
	DefaultQuiesce = true
	// DefaultStoreParkIdle is the default of store_park_idle_seconds: a partition replica's
	// store unused for a minute closes its Pebble database until its next use.
	DefaultStoreParkIdle = time.Minute
	// DefaultMaxOpenStores is the default of max_open_stores: the partition replicas'
	// stores a server keeps open at most (about eight files each) while others are idle.
	DefaultMaxOpenStores = 256
)

// MaxClusterID is the largest duplication cluster id a value's timetag can carry.
const MaxClusterID = dup.MaxClusterID

// Settings are the replica server's settings, each registered once in its registry (which
// backs /config, /configs and /updateConfig). Make them with [NewSettings], load a file into
// Registry() if there is one, and pass them in [Config].Settings; Config fields that are set
// override them.
type Settings struct {
	reg *config.Registry
	// Auth and ACL are the client authentication and access control settings, section
	// [security] (packages sasl and acl).
	Auth *sasl.Settings
	ACL  *acl.Settings

	Listen, Advertise, DataDir, Metas *config.Value[string]

	SyncIntervalMS  *config.Value[uint32]
	RaftTickMS      *config.Value[uint32]
	LogCompactEvery *config.Value[uint32]
	LogKeep         *config.Value[uint32]
	// LogKeepBytes is mutable: a truncation by bytes (logbytes.go).
	LogKeepBytes   *config.Value[uint64]
	GarbageGraceS  *config.Value[uint32]
	CommitDelayUS  *config.Value[uint32]
	CommitSiblings *config.Value[uint32]
	// RaftLogDurability ("always" or "os") and RaftLogSyncIntervalMS: see
	// Config.RaftLogDurability.
	RaftLogDurability     *config.Value[string]
	RaftLogSyncIntervalMS *config.Value[uint32]
	ClusterID             *config.Value[uint32]
	ClusterName           *config.Value[string]
	BlockCacheBytes       *config.Value[uint64]
	// BackupRateMB: see Config.BackupRateMB.
	BackupRateMB *config.Value[uint32]

	// SlowQueryThresholdNS is mutable: requests slower than it are logged (Warn) and
	// counted in the slow_requests metric; 0 turns that off.
	SlowQueryThresholdNS *config.Value[uint64]
	// LeaderChangeHoldMS is mutable: how long a request for a partition this server does
	// not lead waits for the partition's leader to be known, to be forwarded to it
	// (forward.go); 0 turns holding and forwarding off.
	LeaderChangeHoldMS *config.Value[uint32]
	// MaxPendingWriteBytes and WriteQueueTimeoutMS are mutable: the admission of writes
	// under overload (admission.go).
	MaxPendingWriteBytes *config.Value[uint64]
	WriteQueueTimeoutMS  *config.Value[uint32]
	// RaftQueueBytes bounds the raft appends queued for one peer (raftnet.Config).
	RaftQueueBytes *config.Value[uint64]

	// Duplication (package dup): whether primaries ship; whether a follower takes writes of
	// unconfigured cluster ids; the batch size, the report period, last-writer-wins on the
	// follower and the log kept for unconfirmed writes (mutable but the period); the remote
	// clusters and the cluster ids.
	DupEnabled, DupIgnoreOtherClusterIDs, DupVerifyTimetag *config.Value[bool]
	DupBatchBytes, DupSyncIntervalS, DupMaxRetained        *config.Value[uint32]
	DupBatchLingerMS                                       *config.Value[uint32]
	// Quiesce: idle raft groups stop ticking and heartbeating (quiesce.go).
	Quiesce *config.Value[bool]
	// StoreParkIdleS: a store unused this long is parked (storage.Parking); 0 never.
	StoreParkIdleS *config.Value[uint32]
	// MaxOpenStores: past it, an opening store parks the least recently used idle ones
	// (storage.ParkingOptions.MaxOpen); 0 no bound.
	MaxOpenStores      *config.Value[uint32]
	Clusters, DupGroup *config.Section
	// Network are the connection bounds of the RPC port (section network).
	Network *rpc.LimitSettings
	// Reads are the bounds of one read (limits.go).
	Reads *readLimitSettings
	// Hotkeys are the hot-key detection and top-k settings (hotkey.go).
	Hotkeys *hotkeySettings
}

// NewSettings registers every setting of a replica server, with its default, in a new
// registry.
func NewSettings() *Settings {
	r := config.NewRegistry()
	str := func(section, name, desc, def string) *config.Value[string] {
		return config.Define(r, config.Spec[string]{Section: section, Name: name, Description: desc, Default: def})
	}
	u32 := func(section, name, desc string, def, min, max uint32) *config.Value[uint32] {
		return config.Define(r, config.Spec[uint32]{Section: section, Name: name, Description: desc, Default: def,
			Validate: func(v uint32) error {
				switch {
				case v < min:
					return errors.New("too small")
				case v > max:
					return errors.New("too large")
				}
				return nil
			}})
	}
	const any32 = 1<<32 - 1
	blockservice.DefineConfig(r)
	return &Settings{
		Auth:    sasl.NewSettings(r),
		ACL:     acl.NewSettings(r),
		Network: rpc.DefineLimits(r),
		Reads:   defineReadLimits(r),
		Hotkeys: defineHotkeySettings(r),
		BackupRateMB: u32("replication", "cold_backup_rate_limit_mb",
			"The MB per second this server sends to and receives from block services (backups, restores, bulk loads), all transfers together; 0: no bound.", 200, 0, any32),
		reg:       r,
		Listen:    str("replica_server", "listen", "The TCP address the server listens on, for RPCs and HTTP.", ""),
		Advertise: str("replica_server", "advertise", "The ip:port clients and other servers reach this server at; empty means the listening address.", ""),
		DataDir:   str("replica_server", "data_dir", "The directory of the partition replicas and the raft log (required).", ""),
		Metas:     str("replica_server", "meta_servers", "The meta servers, comma separated.", ""),
		SyncIntervalMS: u32("replication", "config_sync_interval_ms",
			"The period, in milliseconds, of the server's report to the meta leader.", uint32(DefaultSyncInterval/time.Millisecond), 1, any32),
		RaftTickMS: u32("replication", "raft_tick_ms",
			"The raft tick of the partitions, in milliseconds; elections take 10 to 20 ticks.", uint32(DefaultTickInterval/time.Millisecond), 1, any32),
		LogCompactEvery: u32("replication", "raft_log_compact_every",
			"How many applied entries accumulate in a partition's raft log before it is truncated.", DefaultLogCompactEvery, 1, any32),
		LogKeep: u32("replication", "raft_log_keep",
			"How many applied entries a raft log truncation keeps, so slightly lagging replicas catch up from the log.", DefaultLogKeep, 1, any32),
		LogKeepBytes: config.Define(r, config.Spec[uint64]{Section: "replication", Name: "raft_log_keep_bytes",
			Description: "The bytes of applied entries a partition's raft log keeps in memory when its entries are big: once they hold twice this, the log is truncated down to this, even before raft_log_compact_every entries. 0: by count only.",
			Default:     DefaultLogKeepBytes, Mutable: true}),
		GarbageGraceS: u32("replication", "gc_disk_garbage_replica_interval_seconds",
			"How long, in seconds, a replica no longer assigned to this server is kept before its data is deleted.", uint32(DefaultGarbageGrace/time.Second), 1, any32),
		CommitDelayUS: u32("replication", "group_commit_delay_us",
			"While at least group_commit_siblings client writes wait on the server, its raft log fsyncs start at most once per this many microseconds, so each covers more writes; 0 turns that off.",
			uint32(raftlog.DefaultOptions.Delay/time.Microsecond), 0, any32),
		CommitSiblings: u32("replication", "group_commit_siblings",
			"How many client writes must wait on the server for group_commit_delay_us to apply.", uint32(raftlog.DefaultOptions.Siblings), 1, any32),
		RaftLogDurability: config.Define(r, config.Spec[string]{Section: "replication", Name: "raft_log_durability",
			Description: "When a write is acknowledged: always (once fsynced in the raft log of a quorum) or os (once written to the operating system of a quorum; the raft log is fsynced every raft_log_sync_interval_ms, and a power loss of a quorum within it can lose acknowledged writes).",
			Default:     DefaultRaftLogDurability, Validate: validDurability}),
		RaftLogSyncIntervalMS: u32("replication", "raft_log_sync_interval_ms",
			"With raft_log_durability = os, how often the raft log is fsynced, in milliseconds.", uint32(raftlog.DefaultSyncInterval/time.Millisecond), 1, any32),
		ClusterID: u32("replication", "cluster_id",
			"The duplication cluster id written into the timetag of every value (0 to 127).", 0, 0, MaxClusterID),
		ClusterName: str("replication", "cluster_name", "The cluster's name, reported by /metrics; its [duplication-group] id is the cluster id.", ""),
		BlockCacheBytes: config.Define(r, config.Spec[uint64]{Section: "pegasus.server", Name: "rocksdb_block_cache_capacity",
			Description: "The bytes of the block cache shared by every partition replica of the server.",
			Default:     DefaultBlockCacheSize, Validate: func(v uint64) error {
				if v == 0 {
					return errors.New("must be positive")
				}
				return nil
			}}),
		SlowQueryThresholdNS: config.Define(r, config.Spec[uint64]{Section: "pegasus.server", Name: "rocksdb_slow_query_threshold_ns",
			Description: "Requests that take longer than this many nanoseconds are logged and counted as slow; 0 turns that off.",
			Default:     uint64(100 * time.Millisecond), Mutable: true}),
		LeaderChangeHoldMS: config.Define(r, config.Spec[uint32]{Section: "replication", Name: "leader_change_hold_ms",
			Description: "How long, in milliseconds, a request that reaches a replica that does not lead its partition (during a leadership change, or from a client that has not seen the change) waits for the new leader to be known, to be forwarded to it, before it is refused with ERR_INVALID_STATE; bounded by the request's timeout too. 0 turns holding and forwarding off.",
			Default:     uint32(DefaultLeaderChangeHold / time.Millisecond), Mutable: true}),
		MaxPendingWriteBytes: config.Define(r, config.Spec[uint64]{Section: "replication", Name: "max_pending_write_bytes",
			Description: "The bytes of writes the server's primaries hold at once, from their arrival to their answer; a write past it is refused at once with ERR_BUSY. 0 removes the bound.",
			Default:     DefaultMaxPendingWriteBytes, Mutable: true}),
		WriteQueueTimeoutMS: config.Define(r, config.Spec[uint32]{Section: "replication", Name: "write_queue_timeout_ms",
			Description: "The standing delay, in milliseconds, past which a primary sheds writes: while its oldest write in progress has waited longer, new writes are refused at once with ERR_BUSY, and a write that waited longer for the partition's raft loop to take it is refused instead of proposed (neither is in the log). 0 removes the bound.",
			Default:     uint32(DefaultWriteQueueTimeout / time.Millisecond), Mutable: true}),
		RaftQueueBytes: config.Define(r, config.Spec[uint64]{Section: "replication", Name: "max_raft_queue_bytes_per_peer",
			Description: "The bytes of raft appends (messages carrying entries) queued for one peer server and not yet taken by its connection; an append past it is dropped (raft sends it again), counted in raft_bytes_dropped. Heartbeats, votes and answers are queued apart and sent first.",
			Default:     raftnet.DefaultMaxQueueBytes, Validate: func(v uint64) error {
				if v == 0 {
					return errors.New("must be positive")
				}
				return nil
			}}),
		DupEnabled: config.Define(r, config.Spec[bool]{Section: "replication", Name: "duplication_enabled",
			Description: "Whether the primaries ship their duplicated tables' writes to the followers.", Default: true}),
		DupIgnoreOtherClusterIDs: config.Define(r, config.Spec[bool]{Section: "replication", Name: "dup_ignore_other_cluster_ids",
			Description: "Whether duplicated writes of a cluster id without a [duplication-group] entry are taken (never this cluster's own)."}),
		DupVerifyTimetag: config.Define(r, config.Spec[bool]{Section: "replication", Name: "dup_verify_timetag", Mutable: true,
			Description: "Whether the writes this server ships ask the follower to keep a value newer than theirs (last writer wins): set it on both clusters of two tables duplicating to each other."}),
		DupBatchBytes: config.Define(r, config.Spec[uint32]{Section: "replication", Name: "duplicate_log_batch_bytes", Mutable: true,
			Description: "The bytes of writes after which a duplication batch is cut (at most 1 MiB).", Default: dup.DefaultBatchBytes,
			Validate: func(v uint32) error {
				if v == 0 || v > dup.MaxBatchBytes {
					return errors.New("want 1 to 1048576")
				}
				return nil
			}}),
		DupBatchLingerMS: config.Define(r, config.Spec[uint32]{Section: "replication", Name: "dup_batch_linger_ms", Mutable: true,
			Description: "How long, in milliseconds, a duplication shipper that just sent a batch smaller than duplicate_log_batch_bytes waits for more writes before its next batch: fewer, larger batches (each an RPC and a raft write on the follower) for up to this much more lag; 0 sends each batch as soon as the last is taken.",
			Default:     uint32(dup.DefaultLinger / time.Millisecond)}),
		DupSyncIntervalS: u32("replication", "duplication_sync_period_second",
			"The period, in seconds, of the duplication progress reports to the meta leader.", uint32(DefaultDupSyncInterval/time.Second), 1, any32),
		DupMaxRetained: config.Define(r, config.Spec[uint32]{Section: "replication", Name: "dup_max_retained_log_entries", Mutable: true,
			Description: "How many raft log entries a partition keeps at most for duplications that have not confirmed them; past it the log is truncated anyway and the duplication is marked lagging (its follower misses those writes).",
			Default:     DefaultDupMaxRetained}),
		Quiesce: config.Define(r, config.Spec[bool]{Section: "replication", Name: "quiesce", Default: DefaultQuiesce,
			Description: "Whether an idle partition's raft group stops ticking and heartbeating (quiesces) until a request, a peer's message or a failure of its leader's server wakes it; the servers then detect failures with one ping per peer server per raft tick."}),
		StoreParkIdleS: u32("replication", "store_park_idle_seconds",
			"How long, in seconds, a partition replica's store may go unused (no read, write, apply, checkpoint or scan) before its Pebble database is flushed and closed, releasing its files and memory; its next use reopens it (a few milliseconds). 0 keeps every store open.",
			uint32(DefaultStoreParkIdle/time.Second), 0, any32),
		MaxOpenStores: u32("replication", "max_open_stores",
			"How many partition replica stores the server keeps open at most (each holds about eight files and its memtable): a store about to open (a new replica, or a parked store its next use reopens) first parks the least recently used stores that nothing uses; stores in use are never parked, so more may be open while more are in use. 0: no bound.",
			DefaultMaxOpenStores, 0, any32),
		Clusters: config.DefineSection(r, dup.ClustersSection, "The remote clusters: name = meta servers, comma separated."),
		DupGroup: config.DefineSection(r, dup.GroupSection, "The duplication cluster ids: cluster name = id (1 to 127), this cluster's own included."),
	}
}

func validDurability(v string) error {
	_, err := raftlog.ParseDurability(v)
	return err
}

// Registry returns the registry the settings live in.
func (st *Settings) Registry() *config.Registry { return st.reg }
