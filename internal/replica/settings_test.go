package replica

import (
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/raftlog"
	"github.com/gopegasus/pegasus/internal/servertest"
)

// The group commit delay comes from the settings unless the Config sets it; 0 in either
// turns the spacing off, and what runs is shown in the settings.
func TestCommitDelaySettings(t *testing.T) {
	cases := []struct {
		name        string
		setting     string // group_commit_delay_us, "" for the default
		cfg         *time.Duration
		want        time.Duration
		wantSetting uint32
	}{
		{"default", "", nil, raftlog.DefaultOptions.Delay, uint32(raftlog.DefaultOptions.Delay / time.Microsecond)},
		{"from settings", "500", nil, 500 * time.Microsecond, 500},
		{"off in settings", "0", nil, 0, 0},
		{"config wins", "500", new(2 * time.Millisecond), 2 * time.Millisecond, 2000},
		{"off in config", "500", new(time.Duration(0)), 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := NewSettings()
			if c.setting != "" {
				if err := st.Registry().Set("group_commit_delay_us", c.setting); err != nil {
					t.Fatal(err)
				}
			}
			cfg := Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), CommitDelay: c.cfg, Settings: st}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := *s.cfg.CommitDelay; got != c.want {
				t.Errorf("CommitDelay %v, want %v", got, c.want)
			}
			if got := st.CommitDelayUS.Get(); got != c.wantSetting {
				t.Errorf("group_commit_delay_us %d, want %d", got, c.wantSetting)
			}
			if s.cfg.CommitSiblings != raftlog.DefaultOptions.Siblings {
				t.Errorf("CommitSiblings %d, want %d", s.cfg.CommitSiblings, raftlog.DefaultOptions.Siblings)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// EnsureDefaults takes every default from the settings registry.
func TestEnsureDefaults(t *testing.T) {
	var cfg Config
	cfg.EnsureDefaults()
	if cfg.SyncInterval != DefaultSyncInterval || cfg.TickInterval != DefaultTickInterval ||
		cfg.LogCompactEvery != DefaultLogCompactEvery || cfg.LogKeep != DefaultLogKeep ||
		cfg.GarbageGrace != DefaultGarbageGrace || cfg.BlockCacheSize != DefaultBlockCacheSize ||
		*cfg.CommitDelay != raftlog.DefaultOptions.Delay || cfg.CommitSiblings != raftlog.DefaultOptions.Siblings ||
		cfg.RaftLogDurability != "always" || cfg.RaftLogSyncInterval != raftlog.DefaultSyncInterval ||
		*cfg.ClusterID != 0 || cfg.Logger == nil || cfg.Version != "dev" {
		t.Fatalf("defaults: %+v", cfg)
	}
	st := NewSettings()
	for name, v := range map[string]string{"config_sync_interval_ms": "250", "cluster_id": "5", "meta_servers": "10.0.0.1:34601, 10.0.0.2:34601"} {
		if err := st.Registry().Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	cfg = Config{Settings: st, TickInterval: 50 * time.Millisecond}
	cfg.EnsureDefaults()
	if cfg.SyncInterval != 250*time.Millisecond || *cfg.ClusterID != 5 || len(cfg.Metas) != 2 || cfg.Metas[1] != "10.0.0.2:34601" ||
		cfg.TickInterval != 50*time.Millisecond {
		t.Fatalf("from settings: %+v", cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // a part of the error; "" for none
	}{
		{"ok", Config{Listen: "127.0.0.1:0", DataDir: "d", Advertise: "10.0.0.1:34801"}, ""},
		{"no listen", Config{DataDir: "d"}, "Listen or Config.Listener is required"},
		{"no data dir", Config{Listen: "127.0.0.1:0"}, "DataDir is required"},
		{"wildcard advertise", Config{Listen: ":0", DataDir: "d", Advertise: "0.0.0.0:34801"}, "is a wildcard"},
		{"ipv6 advertise", Config{Listen: ":0", DataDir: "d", Advertise: "[::1]:34801"}, "want an IPv4 ip:port"},
		{"host name advertise", Config{Listen: ":0", DataDir: "d", Advertise: "localhost:34801"}, "want an IPv4 ip:port"},
		{"bad meta", Config{Listen: ":0", DataDir: "d", Metas: []string{"meta1"}}, `meta server address "meta1"`},
		{"cluster id too large", Config{Listen: ":0", DataDir: "d", ClusterID: new(uint8(200))}, "cluster_id"},
		{"cluster id 0 is a value", Config{Listen: ":0", DataDir: "d", ClusterID: new(uint8(0))}, ""},
		{"commit delay not whole", Config{Listen: ":0", DataDir: "d", CommitDelay: new(1500 * time.Nanosecond)}, "group_commit_delay_us"},
		{"negative tick", Config{Listen: ":0", DataDir: "d", TickInterval: -time.Millisecond}, "raft_tick_ms"},
		{"unknown durability", Config{Listen: ":0", DataDir: "d", RaftLogDurability: "never"}, "raft_log_durability"},
		{"sync interval not whole", Config{Listen: ":0", DataDir: "d", RaftLogSyncInterval: 1500 * time.Microsecond}, "raft_log_sync_interval_ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { servertest.Validate(t, &c.cfg, c.want) })
	}
}

// A replica listening on a wildcard address without an advertised one is refused at New.
func TestNewRefusesWildcardAdvertise(t *testing.T) {
	_, err := New(Config{Listen: "0.0.0.0:0", DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "wildcard") {
		t.Fatalf("New on 0.0.0.0 without Advertise: %v", err)
	}
}

// The raft log's durability comes from raft_log_durability and raft_log_sync_interval_ms
// unless the Config sets it; a value that is neither always nor os is refused (the Config's
// in TestConfigValidate).
func TestRaftLogDurabilitySettings(t *testing.T) {
	cases := []struct {
		name              string
		setting, interval string // "" for the defaults
		cfg               string
		want              raftlog.Durability
		wantInterval      time.Duration
	}{
		{"default", "", "", "", raftlog.DurabilityAlways, raftlog.DefaultSyncInterval},
		{"from settings", "os", "20", "", raftlog.DurabilityOS, 20 * time.Millisecond},
		{"config wins", "os", "", "always", raftlog.DurabilityAlways, raftlog.DefaultSyncInterval},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := NewSettings()
			for name, v := range map[string]string{"raft_log_durability": c.setting, "raft_log_sync_interval_ms": c.interval} {
				if v != "" {
					if err := st.Registry().Set(name, v); err != nil {
						t.Fatal(err)
					}
				}
			}
			s, err := New(Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), RaftLogDurability: c.cfg, Settings: st})
			if err != nil {
				t.Fatal(err)
			}
			opts := s.rlog.Options()
			if opts.Durability != c.want || opts.SyncInterval != c.wantInterval {
				t.Errorf("raft log runs with %v every %v, want %v every %v", opts.Durability, opts.SyncInterval, c.want, c.wantInterval)
			}
			if got := st.RaftLogDurability.Get(); got != c.want.String() {
				t.Errorf("raft_log_durability %q, want %q", got, c.want)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if err := NewSettings().Registry().Set("raft_log_durability", "fsync"); err == nil {
		t.Error("raft_log_durability = fsync accepted")
	}
}

// The cluster id is the [duplication-group] id of the cluster's name, unless set; a set one
// that disagrees is refused.
func TestClusterIDFromDuplicationGroup(t *testing.T) {
	st := NewSettings()
	if err := st.Registry().Load(strings.NewReader("[replication]\ncluster_name = c1\n[duplication-group]\nc1 = 5\nc2 = 6\n[pegasus.clusters]\nc2 = 127.0.0.1:1\n"), "r.ini"); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Settings: st}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil || *cfg.ClusterID != 5 || cfg.ClusterName != "c1" {
		t.Fatalf("id %d, name %q, %v", *cfg.ClusterID, cfg.ClusterName, err)
	}
	if m, ok := cfg.Peers.Metas("c2"); !ok || m[0] != "127.0.0.1:1" {
		t.Fatalf("peers %v", m)
	}
	other := uint8(7)
	cfg = Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Settings: st, ClusterID: &other}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "cluster id 7") {
		t.Fatalf("a disagreeing cluster id: %v", err)
	}
}
