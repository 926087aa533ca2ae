package meta

import (
	"errors"
	"time"

	"github.com/gopegasus/pegasus/internal/config"
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
)

// Settings are the meta server's settings, each registered once in its registry (which backs
// /config, /configs and /updateConfig). Make them with [NewSettings], load a file into
// Registry() if there is one, and pass them in [Config].Settings; Config fields that are set
// override them.
type Settings struct {
	reg *config.Registry

	Listen, Advertise, DataDir, Metas, ClusterName *config.Value[string]
	NodeGraceMS, RaftTickMS, SnapshotEntries       *config.Value[uint32]
	HoldDroppedS                                   *config.Value[uint32]
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
	return &Settings{
		reg:         r,
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
	}
}

// Registry returns the registry the settings live in.
func (st *Settings) Registry() *config.Registry { return st.reg }
