package replica

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/raftlog"
)

// Settings are the replica server's settings, each registered once in its registry (which
// backs /config, /configs and /updateConfig). Make them with [NewSettings], load a file into
// Registry() if there is one, and pass them in [Config].Settings; Config fields that are set
// override them.
type Settings struct {
	reg *config.Registry

	Listen, Advertise, DataDir, Metas *config.Value[string]

	SyncIntervalMS  *config.Value[uint32]
	RaftTickMS      *config.Value[uint32]
	LogCompactEvery *config.Value[uint32]
	LogKeep         *config.Value[uint32]
	GarbageGraceS   *config.Value[uint32]
	CommitDelayUS   *config.Value[uint32]
	CommitSiblings  *config.Value[uint32]
	ClusterID       *config.Value[uint32]
	ClusterName     *config.Value[string]

	// SlowQueryThresholdNS is mutable: requests slower than it are logged (Warn) and
	// counted in the slow_requests metric; 0 turns that off.
	SlowQueryThresholdNS *config.Value[uint64]
}

// NewSettings registers every setting of a replica server, with its default, in a new
// registry.
func NewSettings() *Settings {
	r := config.NewRegistry()
	str := func(section, name, desc, def string) *config.Value[string] {
		return config.Define(r, config.Spec[string]{Section: section, Name: name, Description: desc, Default: def})
	}
	u32 := func(section, name, desc string, def uint32, min uint32) *config.Value[uint32] {
		return config.Define(r, config.Spec[uint32]{Section: section, Name: name, Description: desc, Default: def,
			Validate: func(v uint32) error {
				if v < min {
					return errors.New("too small")
				}
				return nil
			}})
	}
	return &Settings{
		reg:       r,
		Listen:    str("replica_server", "listen", "The TCP address the server listens on, for RPCs and HTTP.", ""),
		Advertise: str("replica_server", "advertise", "The ip:port clients and other servers reach this server at; empty means the listening address.", ""),
		DataDir:   str("replica_server", "data_dir", "The directory of the partition replicas and the raft log (required).", ""),
		Metas:     str("replica_server", "meta_servers", "The meta servers, comma separated.", ""),
		SyncIntervalMS: u32("replication", "config_sync_interval_ms",
			"The period, in milliseconds, of the server's report to the meta leader.", uint32(DefaultSyncInterval/time.Millisecond), 1),
		RaftTickMS: u32("replication", "raft_tick_ms",
			"The raft tick of the partitions, in milliseconds; elections take 10 to 20 ticks.", uint32(DefaultTickInterval/time.Millisecond), 1),
		LogCompactEvery: u32("replication", "raft_log_compact_every",
			"How many applied entries accumulate in a partition's raft log before it is truncated.", DefaultLogCompactEvery, 1),
		LogKeep: u32("replication", "raft_log_keep",
			"How many applied entries a raft log truncation keeps, so slightly lagging replicas catch up from the log.", DefaultLogKeep, 1),
		GarbageGraceS: u32("replication", "gc_disk_garbage_replica_interval_seconds",
			"How long, in seconds, a replica no longer assigned to this server is kept before its data is deleted.", uint32(DefaultGarbageGrace/time.Second), 1),
		CommitDelayUS: u32("replication", "group_commit_delay_us",
			"While at least group_commit_siblings client writes wait on the server, its raft log fsyncs start at most once per this many microseconds, so each covers more writes; 0 turns that off.",
			uint32(raftlog.DefaultOptions.Delay/time.Microsecond), 0),
		CommitSiblings: u32("replication", "group_commit_siblings",
			"How many client writes must wait on the server for group_commit_delay_us to apply.", uint32(raftlog.DefaultOptions.Siblings), 1),
		ClusterID: u32("replication", "cluster_id",
			"The duplication cluster id written into the timetag of every value (0 to 127).", 0, 0),
		ClusterName: str("replication", "cluster_name", "The cluster's name, reported by /metrics.", ""),
		SlowQueryThresholdNS: config.Define(r, config.Spec[uint64]{Section: "pegasus.server", Name: "rocksdb_slow_query_threshold_ns",
			Description: "Requests that take longer than this many nanoseconds are logged and counted as slow; 0 turns that off.",
			Default:     uint64(100 * time.Millisecond), Mutable: true}),
	}
}

// Registry returns the registry the settings live in.
func (st *Settings) Registry() *config.Registry { return st.reg }

// resolve merges the settings and cfg: a Config field that is set wins and is written back
// into the settings (so /configs shows what the server runs with); an unset one is taken
// from the settings.
func (st *Settings) resolve(cfg *Config) error {
	set := func(name, v string) error { return st.reg.Set(name, v) }
	var err error
	if cfg.Listen == "" && cfg.Listener == nil {
		cfg.Listen = st.Listen.Get()
	} else if cfg.Listen != "" {
		err = errors.Join(err, set("listen", cfg.Listen))
	}
	if cfg.Advertise == "" {
		cfg.Advertise = st.Advertise.Get()
	} else {
		err = errors.Join(err, set("advertise", cfg.Advertise))
	}
	if cfg.DataDir == "" {
		cfg.DataDir = st.DataDir.Get()
	} else {
		err = errors.Join(err, set("data_dir", cfg.DataDir))
	}
	if len(cfg.Metas) == 0 {
		for _, m := range strings.Split(st.Metas.Get(), ",") {
			if m = strings.TrimSpace(m); m != "" {
				cfg.Metas = append(cfg.Metas, m)
			}
		}
	} else {
		err = errors.Join(err, set("meta_servers", strings.Join(cfg.Metas, ",")))
	}
	ms := func(name string, d *time.Duration, v *config.Value[uint32]) {
		if *d <= 0 {
			*d = time.Duration(v.Get()) * time.Millisecond
			return
		}
		err = errors.Join(err, set(name, itoa(uint64(max(*d/time.Millisecond, 1)))))
	}
	ms("config_sync_interval_ms", &cfg.SyncInterval, st.SyncIntervalMS)
	ms("raft_tick_ms", &cfg.TickInterval, st.RaftTickMS)
	if cfg.GarbageGrace <= 0 {
		cfg.GarbageGrace = time.Duration(st.GarbageGraceS.Get()) * time.Second
	} else {
		err = errors.Join(err, set("gc_disk_garbage_replica_interval_seconds", itoa(uint64(max(cfg.GarbageGrace/time.Second, 1)))))
	}
	switch {
	case cfg.CommitDelay == 0 && st.CommitDelayUS.Get() == 0:
		cfg.CommitDelay = -1 // off
	case cfg.CommitDelay == 0:
		cfg.CommitDelay = time.Duration(st.CommitDelayUS.Get()) * time.Microsecond
	case cfg.CommitDelay < 0:
		err = errors.Join(err, set("group_commit_delay_us", "0"))
	default:
		err = errors.Join(err, set("group_commit_delay_us", itoa(uint64(cfg.CommitDelay/time.Microsecond))))
	}
	count := func(name string, n *int, v *config.Value[uint32]) {
		if *n <= 0 {
			*n = int(v.Get())
			return
		}
		err = errors.Join(err, set(name, itoa(uint64(*n))))
	}
	count("raft_log_compact_every", &cfg.LogCompactEvery, st.LogCompactEvery)
	count("raft_log_keep", &cfg.LogKeep, st.LogKeep)
	count("group_commit_siblings", &cfg.CommitSiblings, st.CommitSiblings)
	if cfg.ClusterID == 0 {
		if v := st.ClusterID.Get(); v > 127 {
			err = errors.Join(err, errors.New("replica: cluster_id must be at most 127"))
		} else {
			cfg.ClusterID = uint8(v)
		}
	} else {
		err = errors.Join(err, set("cluster_id", itoa(uint64(cfg.ClusterID))))
	}
	return err
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
