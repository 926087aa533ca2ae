package replica

import (
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/raftlog"
)

// The group commit delay comes from the settings unless the Config sets it; 0 in the
// settings, or a negative Config value, turns it off, and what runs is shown in the settings.
func TestCommitDelaySettings(t *testing.T) {
	cases := []struct {
		name        string
		setting     string // group_commit_delay_us, "" for the default
		cfg         time.Duration
		want        time.Duration
		wantSetting uint32
	}{
		{"default", "", 0, raftlog.DefaultOptions.Delay, uint32(raftlog.DefaultOptions.Delay / time.Microsecond)},
		{"from settings", "500", 0, 500 * time.Microsecond, 500},
		{"off in settings", "0", 0, -1, 0},
		{"config wins", "500", 2 * time.Millisecond, 2 * time.Millisecond, 2000},
		{"off in config", "500", -1, -1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := NewSettings()
			if c.setting != "" {
				if err := st.Registry().Set("group_commit_delay_us", c.setting); err != nil {
					t.Fatal(err)
				}
			}
			cfg := Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), CommitDelay: c.cfg}
			if err := st.resolve(&cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.CommitDelay != c.want {
				t.Errorf("CommitDelay %v, want %v", cfg.CommitDelay, c.want)
			}
			if got := st.CommitDelayUS.Get(); got != c.wantSetting {
				t.Errorf("group_commit_delay_us %d, want %d", got, c.wantSetting)
			}
			if cfg.CommitSiblings != raftlog.DefaultOptions.Siblings {
				t.Errorf("CommitSiblings %d, want %d", cfg.CommitSiblings, raftlog.DefaultOptions.Siblings)
			}
		})
	}
}
