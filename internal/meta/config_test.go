package meta

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/raftlog"
	"github.com/gopegasus/pegasus/internal/servertest"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // a part of the error; "" for none
	}{
		{"ok", Config{Listen: "127.0.0.1:0", DataDir: "d"}, ""},
		{"no listen", Config{DataDir: "d"}, "Config.Listen or Config.Listener is required"},
		{"no data dir", Config{Listen: "127.0.0.1:0"}, "Config.DataDir is required"},
		{"wildcard advertise", Config{Listen: ":0", DataDir: "d", Advertise: "0.0.0.0:34601"}, "is a wildcard"},
		{"bad initial table", Config{Listen: ":0", DataDir: "d", InitialTables: []TableSpec{{Name: "t", Partitions: 0, Replicas: 3}}}, "partition count 0"},
		{"tick not whole", Config{Listen: ":0", DataDir: "d", RaftTick: time.Microsecond}, "raft_tick_ms"},
		{"durability os", Config{Listen: ":0", DataDir: "d", RaftLogDurability: "os"}, ""},
		{"unknown durability", Config{Listen: ":0", DataDir: "d", RaftLogDurability: "never"}, "raft_log_durability"},
		{"sync interval not whole", Config{Listen: ":0", DataDir: "d", RaftLogSyncInterval: time.Microsecond}, "raft_log_sync_interval_ms"},
		{"too many replicas", Config{Listen: ":0", DataDir: "d", InitialTables: []TableSpec{{Name: "t", Partitions: 4, Replicas: 6}}}, "replica count 6"},
		{"table twice", Config{Listen: ":0", DataDir: "d", InitialTables: []TableSpec{
			{Name: "t", Partitions: 4, Replicas: 1}, {Name: "t", Partitions: 4, Replicas: 1}}}, "listed twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { servertest.Validate(t, &c.cfg, c.want) })
	}
}

// A meta listening on a wildcard address without an advertised one is refused at New.
func TestNewRefusesWildcardAdvertise(t *testing.T) {
	_, err := New(Config{Listen: "0.0.0.0:0", DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "wildcard") {
		t.Fatalf("New on 0.0.0.0 without Advertise: %v", err)
	}
}

// raft_log_durability and raft_log_sync_interval_ms reach the metas' raft log.
func TestRaftLogDurabilitySetting(t *testing.T) {
	st := NewSettings()
	for name, v := range map[string]string{"raft_log_durability": "os", "raft_log_sync_interval_ms": "30"} {
		if err := st.Registry().Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Settings: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	defer func() { _ = s.Run(ctx) }()
	if opts := s.raftLog.Options(); opts.Durability != raftlog.DurabilityOS || opts.SyncInterval != 30*time.Millisecond {
		t.Fatalf("raft log runs with %v every %v, want os every 30ms", opts.Durability, opts.SyncInterval)
	}
}
