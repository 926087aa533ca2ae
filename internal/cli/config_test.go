package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServerConfigFileRefusesUnknownSettings(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		file string
		want string
	}{
		{"[replication]\nno_such_setting = 1\n", `unknown setting "no_such_setting"`},
		{"[pegasus.server]\nrocksdb_slow_query_threshold_ns = -1\n", "invalid value"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			path := filepath.Join(dir, "replica.ini")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			err := runReplica(t.Context(), []string{"--config", path, "--data", dir}, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("replica --config with %q: %v, want %q", tc.file, err, tc.want)
			}
		})
	}
	path := filepath.Join(dir, "meta.ini")
	if err := os.WriteFile(path, []byte("[meta_server]\nnode_grace_ms = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runMeta(t.Context(), []string{"--config", path}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "node_grace_ms") {
		t.Errorf("meta --config with node_grace_ms = 0: %v", err)
	}
}
