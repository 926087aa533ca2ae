package replica

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/diskfault"
	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// Config configures a replica [Server]. A field left at its zero value (nil for the
// pointers, whose zero is a real value) takes its setting's value from Settings, whose
// defaults are the server's defaults; a field that is set wins and is written into Settings,
// so /configs shows what the server runs with. [New] calls EnsureDefaults and Validate.
type Config struct {
	// Listen is the TCP address to listen on, e.g. "127.0.0.1:0" (setting listen). Required
	// unless Listener is set.
	Listen string
	// Listener, if set, is used instead of listening on Listen; the server closes it.
	Listener net.Listener
	// Advertise is the "ip:port" clients and other servers use to reach this one (setting
	// advertise; default: the listener's address, which must then not be a wildcard). It
	// must be an IPv4 address: it is what Pegasus clients dial.
	Advertise string
	// DataDir holds one directory per partition replica (<app_id>.<pidx>) and the raft log
	// (setting data_dir). Required.
	DataDir string
	// Metas are the meta servers' addresses, ip:port (setting meta_servers).
	Metas []string
	// SyncInterval is the period of the report to the meta leader (setting
	// config_sync_interval_ms, default 1 s).
	SyncInterval time.Duration
	// TickInterval is the raft tick (setting raft_tick_ms, default 100 ms; elections take
	// 10-20 ticks).
	TickInterval time.Duration
	// LogCompactEvery is how many applied entries accumulate in a partition's raft log
	// before it is truncated (setting raft_log_compact_every, default 2000: few enough that
	// the server's raft log drops its old segments without rewriting many live entries);
	// LogKeep is how many applied entries survive a truncation, so a follower
	// slightly behind catches up from the log rather than a snapshot (setting raft_log_keep,
	// default 1000).
	LogCompactEvery, LogKeep int
	// GarbageGrace is how long a replica this server holds may go unassigned (the meta
	// leader no longer places the partition here, typically because it replaced this
	// server while it was down) before its data and raft state are deleted (setting
	// gc_disk_garbage_replica_interval_seconds, default 1 day). A replica that leads its
	// group is never deleted.
	GarbageGrace time.Duration
	// CommitDelay and CommitSiblings tune the raft log's group commit: while at least
	// CommitSiblings client writes wait on this server, its fsyncs start at most once per
	// CommitDelay, so each covers more writes (settings group_commit_delay_us and
	// group_commit_siblings, defaults raftlog.DefaultOptions). A CommitDelay of 0 turns the
	// spacing off; nil takes the setting.
	CommitDelay    *time.Duration
	CommitSiblings int
	// RaftLogDurability says when the raft log acknowledges a write (setting
	// raft_log_durability): "always" (the default) once it is fsynced, or "os" once it is
	// written to the operating system, the log being fsynced every RaftLogSyncInterval
	// (setting raft_log_sync_interval_ms, default 100 ms). "os" is unsafe: a power loss of
	// a quorum of a partition's servers within the interval can lose acknowledged writes
	// (a process crash cannot); see raftlog.DurabilityOS.
	RaftLogDurability   string
	RaftLogSyncInterval time.Duration
	// BlockCacheSize is the bytes of the Pebble block cache shared by all partitions of
	// the server (setting rocksdb_block_cache_capacity, default 256 MiB).
	BlockCacheSize int64
	// ClusterID is the duplication cluster id written into value timetags, 0 to
	// [MaxClusterID] (setting cluster_id, default 0); nil takes the [duplication-group] id of
	// ClusterName when Peers has one, else the setting.
	ClusterID *uint8
	// ClusterName names this server's cluster among the duplication peers (setting
	// cluster_name).
	ClusterName string
	// Peers are the clusters a follower table may be on and the duplication cluster ids
	// (default: from the Settings' [pegasus.clusters] and [duplication-group] sections).
	Peers *dup.Peers
	// DupSyncInterval is the period of the duplication progress reports to the meta leader
	// (setting duplication_sync_period_second, default 10 s); a shipper that finishes a
	// step reports at once.
	DupSyncInterval time.Duration
	// DupTLS, if set, is the TLS of this server's connections to its duplications'
	// follower clusters (settings [replication] dup_tls, dup_ca_file, dup_cert_file and
	// dup_key_file, read by the command line): The primaries' shippers dial the follower clusters' metas and replica servers
	// with it, as clients of those clusters (see dup.ConnConfig). Default nil: plaintext,
	// which a follower cluster with mandatory_tls refuses.
	DupTLS *tls.Config
	// HTTP serves HTTP requests arriving on the RPC port; default: the HTTP API.
	HTTP http.Handler
	// Version is reported by the version and server-info remote commands (default "dev").
	Version string
	// TLS, if set, serves TLS on the server's port beside plaintext (see
	// rpc.ServerConfig.TLS): a client certificate it verifies names the client
	// (rpc.Request.User). Default nil: plaintext only.
	TLS *tls.Config
	// MandatoryTLS refuses plaintext thrift and HTTP from clients (setting [security]
	// mandatory_tls, read by the command line); the servers' own traffic, authenticated
	// with Secret, is not affected. It needs TLS.
	MandatoryTLS bool
	// Secret is the cluster's secret (default nil: an insecure cluster). With it, raft
	// messages, forwarded requests and snapshots are taken only from connections that
	// authenticated as members of the cluster, and this server authenticates its own
	// connections to the other replica servers and to the metas.
	Secret *rpc.Secret
	// Auth authenticates clients (RPC_NEGOTIATION; default: from the Settings' [security]
	// enable_auth, krb5_keytab and krb5_principal, nil when enable_auth is off: clients
	// stay anonymous). Access control is the Settings' [security] enable_acl (package acl).
	Auth rpc.Authenticator
	// MaxSnapshotBytes bounds a snapshot received from the partition's leader (default
	// DefaultMaxSnapshotBytes); a larger one is refused and the previous store kept.
	MaxSnapshotBytes int64
	// Logger receives server logs (default: discard).
	Logger *slog.Logger
	// Settings are the server's registered settings (default: NewSettings()). They back
	// /config, /configs and /updateConfig.
	Settings *Settings
	// BlockServices are the block services backups, restores and bulk loads name (default:
	// the [block_service.<name>] sections loaded into Settings).
	BlockServices *blockservice.Providers
	// Faults, for tests only, is the disk the raft log and the partition stores write to:
	// it can delay or fail fsyncs and fill up (see package diskfault and diskhealth.go).
	// nil, the default, is the real disk.
	Faults *diskfault.Injector
	// BackupRateMB bounds the bytes per second, in MB, this server uploads to and
	// downloads from block services, all transfers together (setting
	// cold_backup_rate_limit_mb, default 200; nil: the setting; 0: no bound).
	BackupRateMB *int
	// HotkeyInterval, if set, is the period of the hot-key detections' analyses instead of
	// the setting hotkey_analyse_time_interval_s (tests use a fraction of a second).
	HotkeyInterval time.Duration
}

// fields binds the Config fields that have a setting to it.
func (c *Config) fields() []config.Field {
	st := c.Settings
	return []config.Field{
		config.BindString(&c.Listen, st.Listen),
		config.BindString(&c.Advertise, st.Advertise),
		config.BindString(&c.DataDir, st.DataDir),
		config.BindList(&c.Metas, st.Metas),
		config.BindDuration(&c.SyncInterval, st.SyncIntervalMS, time.Millisecond),
		config.BindDuration(&c.TickInterval, st.RaftTickMS, time.Millisecond),
		config.BindCount(&c.LogCompactEvery, st.LogCompactEvery),
		config.BindCount(&c.LogKeep, st.LogKeep),
		config.BindDuration(&c.GarbageGrace, st.GarbageGraceS, time.Second),
		config.BindOptionalDuration(&c.CommitDelay, st.CommitDelayUS, time.Microsecond),
		config.BindCount(&c.CommitSiblings, st.CommitSiblings),
		config.BindString(&c.RaftLogDurability, st.RaftLogDurability),
		config.BindDuration(&c.RaftLogSyncInterval, st.RaftLogSyncIntervalMS, time.Millisecond),
		config.BindCount(&c.BlockCacheSize, st.BlockCacheBytes),
		config.BindOptional(&c.ClusterID, st.ClusterID),
		config.BindOptional(&c.BackupRateMB, st.BackupRateMB),
		config.BindString(&c.ClusterName, st.ClusterName),
		config.BindDuration(&c.DupSyncInterval, st.DupSyncIntervalS, time.Second),
	}
}

// EnsureDefaults fills every unset field: from Settings for the fields that have a setting
// (Settings itself defaults to NewSettings()), and Version and Logger with their defaults.
// It does not validate; see [Config.Validate].
func (c *Config) EnsureDefaults() {
	if c.Settings == nil {
		c.Settings = NewSettings()
	}
	if c.MaxSnapshotBytes <= 0 {
		c.MaxSnapshotBytes = DefaultMaxSnapshotBytes
	}
	if c.Peers == nil {
		if p, err := dup.NewPeers(c.Settings.Clusters.Get(), c.Settings.DupGroup.Get()); err == nil {
			c.Peers = &p
		}
	}
	if c.ClusterName == "" {
		c.ClusterName = c.Settings.ClusterName.Get()
	}
	if c.Peers != nil && c.ClusterID == nil {
		if id, ok := c.Peers.ID(c.ClusterName); ok {
			c.ClusterID = &id
		}
	}
	config.Fill(c.fields()...)
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every field that is missing or out of range, each error naming the field
// or its setting. Call it after EnsureDefaults. The advertised address is checked here when
// it is set; when it is not, New checks the listener's address instead.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen == "" && c.Listener == nil {
		errs = append(errs, errors.New("replica: Config.Listen or Config.Listener is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("replica: Config.DataDir is required"))
	}
	if c.Advertise != "" {
		if err := cluster.CheckAdvertise(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("replica: %w", err))
		}
	}
	for _, m := range c.Metas {
		if _, err := netip.ParseAddrPort(m); err != nil {
			errs = append(errs, fmt.Errorf("replica: meta server address %q: want ip:port", m))
		}
	}
	if c.Settings != nil {
		if err := config.Check(c.fields()...); err != nil {
			errs = append(errs, fmt.Errorf("replica: %w", err))
		}
		if c.Peers == nil {
			if _, err := dup.NewPeers(c.Settings.Clusters.Get(), c.Settings.DupGroup.Get()); err != nil {
				errs = append(errs, fmt.Errorf("replica: %w", err))
			}
		}
	}
	if c.Peers != nil && c.ClusterID != nil {
		if id, ok := c.Peers.ID(c.ClusterName); ok && id != *c.ClusterID {
			errs = append(errs, fmt.Errorf("replica: cluster id %d, but [%s] gives cluster %q id %d", *c.ClusterID, dup.GroupSection, c.ClusterName, id))
		}
	}
	return errors.Join(errs...)
}
