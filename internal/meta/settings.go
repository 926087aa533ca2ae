package meta

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/internal/config"
)

// Settings are the meta server's settings, each registered once in its registry (which backs
// /config, /configs and /updateConfig). Make them with [NewSettings], load a file into
// Registry() if there is one, and pass them in [Config].Settings; Config fields that are set
// override them.
type Settings struct {
	reg *config.Registry

	Listen, Advertise, DataDir, Metas, ClusterName *config.Value[string]
	NodeGraceMS, RaftTickMS, SnapshotEntries       *config.Value[uint32]
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
	}
}

// Registry returns the registry the settings live in.
func (st *Settings) Registry() *config.Registry { return st.reg }

// resolve merges the settings and cfg: a Config field that is set wins and is written back
// into the settings; an unset one is taken from the settings.
func (st *Settings) resolve(cfg *Config) error {
	var err error
	str := func(field *string, v *config.Value[string], name string) {
		if *field == "" {
			*field = v.Get()
		} else {
			err = errors.Join(err, st.reg.Set(name, *field))
		}
	}
	if cfg.Listener == nil {
		str(&cfg.Listen, st.Listen, "listen")
	}
	str(&cfg.Advertise, st.Advertise, "advertise")
	str(&cfg.DataDir, st.DataDir, "data_dir")
	str(&cfg.ClusterName, st.ClusterName, "cluster_name")
	if len(cfg.Metas) == 0 {
		for _, m := range strings.Split(st.Metas.Get(), ",") {
			if m = strings.TrimSpace(m); m != "" {
				cfg.Metas = append(cfg.Metas, m)
			}
		}
	} else {
		err = errors.Join(err, st.reg.Set("server_list", strings.Join(cfg.Metas, ",")))
	}
	dur := func(d *time.Duration, v *config.Value[uint32], name string) {
		if *d <= 0 {
			*d = time.Duration(v.Get()) * time.Millisecond
		} else {
			err = errors.Join(err, st.reg.Set(name, strconv.FormatInt(max(int64(*d/time.Millisecond), 1), 10)))
		}
	}
	dur(&cfg.NodeGrace, st.NodeGraceMS, "node_grace_ms")
	dur(&cfg.RaftTick, st.RaftTickMS, "raft_tick_ms")
	if cfg.SnapshotEntries <= 0 {
		cfg.SnapshotEntries = int(st.SnapshotEntries.Get())
	} else {
		err = errors.Join(err, st.reg.Set("snapshot_entries", strconv.Itoa(cfg.SnapshotEntries)))
	}
	return err
}
