package meta

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// Config configures a [Server]. A field left at its zero value takes its setting's value
// from Settings, whose defaults are the server's defaults; a field that is set wins and is
// written into Settings, so /configs shows what the server runs with. [New] calls
// EnsureDefaults and Validate.
type Config struct {
	// Listen is the TCP address to serve RPCs and HTTP on, e.g. "127.0.0.1:0" (setting
	// listen). Required unless Listener is set.
	Listen string
	// Listener, if set, is used instead of listening on Listen; the server closes it.
	Listener net.Listener
	// Advertise is the "ip:port" reported to others (setting advertise; default: the
	// listener's address, which must then not be a wildcard address).
	Advertise string
	// DataDir holds the meta's raft log (raft/) and the latest snapshot of the cluster map
	// (snapshot.json) (setting data_dir). Required; created if missing.
	DataDir string
	// Metas lists the meta servers' addresses ("ip:port", as each advertises itself; setting
	// server_list); the first one starts the first election. A meta with an empty DataDir
	// creates a new raft group whose members are exactly Metas, so every meta of a new group
	// must be started with the same list, including itself (default: [Advertise], a group of
	// one). Once the group exists its membership lives in the raft log: Metas is then only
	// where to find the others, and changes go through the meta-add and meta-remove commands.
	Metas []string
	// Join starts a meta with an empty DataDir as a new member of an existing group instead
	// of creating a group: it waits until the leader adds it (remote command meta-add) and
	// sends it a snapshot. Ignored when DataDir already holds raft state.
	Join bool
	// RaftTick is the tick of the metas' raft group (setting raft_tick_ms, default 100 ms).
	RaftTick time.Duration
	// SnapshotEntries is how many mutations are applied between two snapshots of the map
	// (setting snapshot_entries, default 1000).
	SnapshotEntries int
	// NodeGrace is how long a replica server may go without a sync before it is considered
	// dead (setting node_grace_ms, default 10 s).
	NodeGrace time.Duration
	// DropReserve is how long a dropped table is kept, and can be recalled, when its drop
	// request does not set reserve_seconds (setting hold_seconds_for_dropped_app, default 7
	// days, in whole seconds).
	DropReserve time.Duration
	// InitialTables are created once, when the meta starts with no table in its storage, as
	// soon as enough replica servers are alive for the largest replica count. They are created
	// in name order (so Pegasus onebox's "stat" and "temp" get app ids 1 and 2), with app type
	// "pegasus" and no envs.
	InitialTables []TableSpec
	// RaftLogDurability says when the metas' raft log acknowledges a write (setting
	// raft_log_durability): "always" (the default) once it is fsynced, or "os" once it is
	// written to the operating system, the log being fsynced every RaftLogSyncInterval
	// (setting raft_log_sync_interval_ms, default 100 ms). "os" is unsafe: a power loss of
	// a quorum of the metas within the interval can lose acknowledged mutations (a process
	// crash cannot); see raftlog.DurabilityOS.
	RaftLogDurability   string
	RaftLogSyncInterval time.Duration
	// CreateWait bounds how long a create_app reply waits for the new table to be ready:
	// every partition led by its intended primary with all its secondaries (setting
	// create_app_wait_ms, default 10 s; also at most half the client's timeout). 0 answers
	// at once, as Pegasus does; nil takes the setting.
	CreateWait *time.Duration
	// ClusterName is reported by cluster_info (setting cluster_name, default "gopegasus"),
	// and names this cluster among the duplication peers.
	ClusterName string
	// Peers are the clusters tables may be duplicated to and the duplication cluster ids
	// (default: from the Settings' [pegasus.clusters] and [duplication-group] sections).
	Peers *dup.Peers
	// DupProgressInterval is how often, at most, the duplications' progress reported by the
	// primaries is saved in the cluster map (setting duplication_progress_persist_ms,
	// default 5 s); more often when a partition finishes a step.
	DupProgressInterval time.Duration
	// DupTLS, if set, is the TLS of this server's connections to its duplications'
	// follower clusters (settings [replication] dup_tls, dup_ca_file, dup_cert_file and
	// dup_key_file, read by the command line): The meta leader dials the follower clusters' metas (to create the follower tables)
	// with it, as clients of those clusters (see dup.ConnConfig). Default nil: plaintext,
	// which a follower cluster with mandatory_tls refuses.
	DupTLS *tls.Config
	// Version is the software version the server reports (default "dev").
	Version string
	// TLS, if set, serves TLS on the server's port beside plaintext (see
	// rpc.ServerConfig.TLS): a client certificate it verifies names the client
	// (rpc.Request.User). Default nil: plaintext only.
	TLS *tls.Config
	// MandatoryTLS refuses plaintext thrift and HTTP from clients (setting [security]
	// mandatory_tls, read by the command line); the servers' own traffic, authenticated
	// with Secret, is not affected. It needs TLS.
	MandatoryTLS bool
	// Secret is the cluster's secret (default nil: an insecure cluster). With it, the
	// metas' raft traffic, the replica servers' reports and the remote commands that change
	// the metas' group are taken only from connections that authenticated as members of
	// the cluster, and this meta authenticates its own connections to the other metas.
	Secret *rpc.Secret
	// Auth authenticates clients (RPC_NEGOTIATION; default: from the Settings' [security]
	// enable_auth, krb5_keytab and krb5_principal, nil when enable_auth is off: clients
	// stay anonymous). Access control is the Settings' [security] enable_acl (package acl).
	Auth rpc.Authenticator
	// Logger receives the server's logs (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now). Liveness, create and drop times use it.
	Now func() time.Time
	// Settings are the server's registered settings (default: NewSettings()). They back
	// /config, /configs and /updateConfig.
	Settings *Settings
	// BlockServices are the block services backups, restores and bulk loads name (default:
	// the [block_service.<name>] sections loaded into Settings).
	BlockServices *blockservice.Providers
	// ColdBackupDisabled turns backups and restores off (setting cold_backup_disabled,
	// default false, as Pegasus's shipped config.ini has it): their RPCs answer
	// ERR_SERVICE_NOT_ACTIVE and /meta/backup_policy 404 "cold_backup_disabled".
	ColdBackupDisabled bool
	// MinBackupInterval is the shortest interval a backup policy may have (setting
	// cold_backup_min_interval_seconds, default 86400 s, Pegasus's bound).
	MinBackupInterval time.Duration
	// ConcurrentBulkLoad lets several tables bulk load at once (setting
	// allow_concurrent_bulk_load, default false: a second table gets ERR_BUSY).
	ConcurrentBulkLoad bool
	// LevelOnStart is the meta function level of a cluster whose level was never set by
	// RPC_CM_CONTROL_META (setting meta_function_level_on_start, default "steady", as
	// Pegasus): "stopped", "blind", "freezed", "steady" or "lively". Once set, the level is
	// part of the replicated cluster map and survives restarts and failovers.
	LevelOnStart string
	// BalanceMovesPerNode bounds how many moves (of replicas or primaries) may be under way
	// at once on one replica server, counting those of the balancer, of decommissions and
	// of the replacement of lost replicas (setting balance_moves_per_node, default 2).
	BalanceMovesPerNode int
	// LivePercentage holds the replacement of lost replicas while fewer than this percentage
	// (0 to 100) of the known replica servers are alive (setting
	// node_live_percentage_threshold_for_update, default 0: never held; Pegasus's is 65).
	// The remote command meta.live_percentage changes it on the leader.
	LivePercentage *int
	// AssignDelay is how long the replicas of a dead replica server wait, once it is
	// declared dead, before they are replaced (setting replica_assign_delay_ms_for_dropouts,
	// default 0: at once). The remote command meta.lb.assign_delay_ms changes it on the
	// leader.
	AssignDelay *time.Duration
	// OpsInterval is the period of the long operations' driver (default
	// DefaultOpsInterval).
	OpsInterval time.Duration
}

// fields binds the Config fields that have a setting to it.
func (c *Config) fields() []config.Field {
	st := c.Settings
	return []config.Field{
		config.BindString(&c.Listen, st.Listen),
		config.BindString(&c.Advertise, st.Advertise),
		config.BindString(&c.DataDir, st.DataDir),
		config.BindList(&c.Metas, st.Metas),
		config.BindString(&c.ClusterName, st.ClusterName),
		config.BindDuration(&c.NodeGrace, st.NodeGraceMS, time.Millisecond),
		config.BindDuration(&c.DropReserve, st.HoldDroppedS, time.Second),
		config.BindDuration(&c.RaftTick, st.RaftTickMS, time.Millisecond),
		config.BindCount(&c.SnapshotEntries, st.SnapshotEntries),
		config.BindString(&c.RaftLogDurability, st.RaftLogDurability),
		config.BindDuration(&c.RaftLogSyncInterval, st.RaftLogSyncIntervalMS, time.Millisecond),
		config.BindOptionalDuration(&c.CreateWait, st.CreateWaitMS, time.Millisecond),
		config.BindBool(&c.ColdBackupDisabled, st.ColdBackupDisabled),
		config.BindDuration(&c.MinBackupInterval, st.MinBackupIntervalS, time.Second),
		config.BindBool(&c.ConcurrentBulkLoad, st.ConcurrentBulkLoad),
		config.BindDuration(&c.DupProgressInterval, st.DupProgressMS, time.Millisecond),
		config.BindString(&c.LevelOnStart, st.LevelOnStart),
		config.BindCount(&c.BalanceMovesPerNode, st.BalanceMovesPerNode),
		config.BindOptional(&c.LivePercentage, st.LivePercentage),
		config.BindOptionalDuration(&c.AssignDelay, st.AssignDelayMS, time.Millisecond),
	}
}

// EnsureDefaults fills every unset field: from Settings for the fields that have a setting
// (Settings itself defaults to NewSettings()), and Version, Logger and Now with their
// defaults. It does not validate; see [Config.Validate].
func (c *Config) EnsureDefaults() {
	if c.Settings == nil {
		c.Settings = NewSettings()
	}
	config.Fill(c.fields()...)
	if c.Peers == nil {
		if p, err := dup.NewPeers(c.Settings.Clusters.Get(), c.Settings.DupGroup.Get()); err == nil {
			c.Peers = &p
		}
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.OpsInterval <= 0 {
		c.OpsInterval = DefaultOpsInterval
	}
}

// Validate reports every field that is missing or out of range, each error naming the field
// or its setting. Call it after EnsureDefaults. The advertised address and the meta list are
// checked here when they are set; New checks them again once the listener's address is known.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen == "" && c.Listener == nil {
		errs = append(errs, errors.New("meta: Config.Listen or Config.Listener is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("meta: Config.DataDir is required"))
	}
	if c.Advertise != "" {
		if err := cluster.CheckAdvertise(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("meta: %w", err))
		}
	}
	if err := validateSpecs(c.InitialTables); err != nil {
		errs = append(errs, err)
	}
	if c.Settings != nil {
		if err := config.Check(c.fields()...); err != nil {
			errs = append(errs, fmt.Errorf("meta: %w", err))
		}
		if c.Peers == nil {
			if _, err := dup.NewPeers(c.Settings.Clusters.Get(), c.Settings.DupGroup.Get()); err != nil {
				errs = append(errs, fmt.Errorf("meta: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
