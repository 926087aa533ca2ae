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

// The duplication sections of a config file are read as they are, and checked: a server
// refuses to start with a bad one.
func TestServerConfigFileDuplicationSections(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		file string
		want string
	}{
		{"[pegasus.clusters]\nc2 = not-an-address\n", `meta server "not-an-address" is not ip:port`},
		{"[duplication-group]\nc1 = 1\nc2 = 1\n", "c1 and c2 have the same id 1"},
		{"[duplication-group]\nc1 = 200\n", "want a cluster id from 1 to 127"},
	} {
		path := filepath.Join(dir, "server.ini")
		if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := runReplica(t.Context(), []string{"--config", path, "--data", dir, "--listen", "127.0.0.1:0", "--insecure"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replica --config with %q: %v, want %q", tc.file, err, tc.want)
		}
		if err := runMeta(t.Context(), []string{"--config", path, "--data", dir, "--listen", "127.0.0.1:0", "--insecure"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("meta --config with %q: %v, want %q", tc.file, err, tc.want)
		}
	}
}
